"""Building models: a registered variant (:func:`create_model`), or the model a checkpoint was
trained as (:func:`restore_model`). Sits above the registry, the models and
checkpoint I/O, and joins them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from hrbench.checkpoint import FORMAT, check_arch, load_checkpoint, read_checkpoint
from hrbench.datasets import DEFAULT_DATASET, dataset_of, get_dataset
from hrbench.errors import CheckpointError, ConfigError
from hrbench.models.pose import PoseModel
from hrbench.registry import ModelEntry, get_entry


def create_model(name: str | ModelEntry, num_keypoints: int = 17, checkpoint: str | Path | None = None,
                 **overrides: Any):
    """Build the full pose model ``name`` (a registered name or alias, or its already resolved
    :class:`~hrbench.registry.ModelEntry`) — backbone + the config's head — with ``num_keypoints`` outputs.

    ``overrides`` replace hyper-parameters of the variant's config; ``checkpoint`` loads an
    official (mmpose 0.x/1.x) or hrbench checkpoint through :mod:`hrbench.checkpoint`.
    """
    if not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ConfigError(f"invalid num_keypoints {num_keypoints!r}: must be a positive integer")
    entry = name if isinstance(name, ModelEntry) else get_entry(name)
    cfg = entry.config(**overrides)
    model = PoseModel(cfg.build_backbone(), num_keypoints, cfg.head, **cfg.head_options())
    model.arch = entry.name
    model.config = cfg
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


@dataclasses.dataclass
class RestoredModel:
    """A model rebuilt from a checkpoint, with what it was trained for: dataset, input (H, W), the
    run's configuration (hrbench training checkpoints; {} otherwise) and where it came from."""

    model: nn.Module
    arch: str
    dataset: str
    input_hw: tuple[int, int]
    config: dict[str, Any]
    source: str


def restore_model(arch: str, checkpoint: str | Path | Mapping[str, Any] | None,
                  overrides: Mapping[str, Any] | None = None, dataset: str | None = None,
                  input_hw: tuple[int, int] | None = None) -> RestoredModel:
    """``arch`` (eval mode) with the weights of ``checkpoint`` (hrbench or official; None: fresh).

    Dataset, input size and hyper-parameter overrides default to the checkpoint's own (its training
    configuration; the dataset also from its keypoint count), else COCO at the dataset's default
    input. An hrbench checkpoint of another architecture, or with another keypoint count than the
    dataset's, is a one-line :class:`CheckpointError` (checked here, once, before the model is built)."""
    entry = get_entry(arch)
    canonical = entry.name
    source = "fresh weights" if checkpoint is None else "<in-memory checkpoint>" if isinstance(checkpoint, Mapping) \
        else str(checkpoint)
    ckpt = {} if checkpoint is None else dict(checkpoint) if isinstance(checkpoint, Mapping) \
        else read_checkpoint(checkpoint)
    saved: dict[str, Any] = {}
    ovr = dict(overrides or {})
    k_saved = None
    if ckpt.get("format") == FORMAT:
        check_arch(ckpt.get("arch"), canonical, source)
        saved = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
        ovr = {**(ckpt.get("overrides") or {}), **ovr}
        k_saved = ckpt.get("num_keypoints")
    spec = get_dataset(dataset or saved.get("dataset") or dataset_of(k_saved) or DEFAULT_DATASET)
    dataset, k = spec.name, spec.num_keypoints
    if k_saved not in (None, k):
        raise CheckpointError(f"checkpoint {source} predicts {k_saved} keypoints; {dataset} has {k}")
    hw = tuple(input_hw or saved.get("input") or spec.input_hw)
    model = create_model(entry, num_keypoints=k, **ovr)
    if ckpt:
        load_checkpoint(model, ckpt, strict=True, source=source, check_header=False)
    return RestoredModel(model.eval(), canonical, dataset, (int(hw[0]), int(hw[1])), saved, source)
