"""A dataset is a registered spec (mmengine's ``DATASETS`` registry): its fixed facts here, at the
ground floor, and the code that reads and scores it registered by the layers that hold it.

:class:`DatasetSpec` names the keypoints, left/right pairs, upper body, skeleton, OKS sigmas, the
papers' default input (H, W), the selection metric and the annotation layout. Its ``annotations``
key names the builder (``hrbench.data`` registers ``"coco"`` and ``"mpii"`` with
:func:`register_builder`) and its ``evaluator`` key the scorer (``hrbench.evaluation`` registers
``"cocoeval"`` and ``"pckh"`` with :func:`register_evaluator`), so imports keep pointing down and a
data set in COCO's annotation style is one spec module plus its :func:`register_dataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hrbench.errors import ConfigError, DataError
from hrbench.plugins import Registry

#: The dataset a command uses when none is given (and a checkpoint does not say).
DEFAULT_DATASET = "coco"


class UnknownDatasetError(ConfigError, DataError):
    """A dataset name no spec is registered under (a config error and a data error alike)."""


@dataclass(frozen=True)
class DatasetSpec:
    """The fixed facts of one keypoint data set.

    ``names``: keypoint names (K); ``flip_pairs``: 0-based left/right index pairs; ``upper_body_ids``:
    the joints of the half-body augmentation; ``input_hw``: the papers' default network input;
    ``metric``: the number reported and ``best.pt`` selected by; ``annotations``: the key of the
    builder that reads its files; ``evaluator``: the key of its evaluator; ``sigmas``: per-keypoint
    OKS sigmas (COCO-style evaluation); ``skeleton``: 0-based limbs drawn on overlays; ``layout``:
    the files under a dataset root, for help texts."""

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    upper_body_ids: tuple[int, ...]
    input_hw: tuple[int, int]
    metric: str
    annotations: str
    evaluator: str
    sigmas: tuple[float, ...] | None = None
    skeleton: tuple[tuple[int, int], ...] = ()
    layout: str = ""

    def __post_init__(self) -> None:
        k = len(self.names)
        used = [i for pair in (*self.flip_pairs, *self.skeleton) for i in pair] + list(self.upper_body_ids)
        if k == 0 or any(not 0 <= i < k for i in used):
            raise ValueError(f"dataset {self.name!r}: keypoint indices must lie in 0..{k - 1}")
        if self.sigmas is not None and len(self.sigmas) != k:
            raise ValueError(f"dataset {self.name!r}: {len(self.sigmas)} OKS sigmas for {k} keypoints")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)


#: A builder: ``(spec, root, split, input_hw, train, det_file, det_score_thr) -> Dataset``.
Builder = Callable[..., Any]
#: An evaluator: ``(dataset, predictions, out_dir) -> metrics dict``.
Evaluator = Callable[..., dict]

_DATASETS: dict[str, DatasetSpec] = {}
#: Readers per annotation layout and scorers, filled by the modules that define them (``data``, ``evaluation``).
_BUILDERS: Registry[Builder] = Registry("builder for annotations")
_EVALUATORS: Registry[Evaluator] = Registry("evaluator")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Register ``spec`` under ``spec.name`` (a name registered twice is a programming error)."""
    if spec.name in _DATASETS:
        raise ValueError(f"dataset {spec.name!r} registered twice")
    _DATASETS[spec.name] = spec
    return spec


def list_datasets() -> tuple[str, ...]:
    """The registered dataset names, in registration order (``coco``, ``mpii``, then any added)."""
    return tuple(_DATASETS)


def names_text(joiner: str = " or ") -> str:
    """The registered names as words: ``"coco or mpii"``, ``"coco, mpii or crowdpose"``."""
    names = list_datasets()
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + joiner + names[-1]


def get_dataset(name: str, option: str = "dataset") -> DatasetSpec:
    """The spec registered as ``name``; otherwise one line ``unknown {option} 'x': expected coco or mpii``
    (:class:`UnknownDatasetError`, a :class:`ConfigError` and a :class:`DataError`)."""
    spec = _DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownDatasetError(f"unknown {option} {name!r}: expected {names_text()}")
    return spec


def dataset_of(keypoints: int | None) -> str | None:
    """The first registered dataset with ``keypoints`` keypoints (17 -> coco, 16 -> mpii), else None."""
    return next((s.name for s in _DATASETS.values() if s.num_keypoints == keypoints), None)


def register_builder(annotations: str, builder: Builder) -> Builder:
    """Register the reader of the ``annotations`` layout (called by the module that defines it)."""
    return _BUILDERS.add(annotations, builder)


def get_builder(spec: DatasetSpec) -> Builder:
    """The builder of ``spec``'s annotation layout; DataError when none is registered."""
    if spec.annotations not in _BUILDERS:
        raise DataError(f"dataset {spec.name!r}: no reader registered for {spec.annotations!r} annotations")
    return _BUILDERS.get(spec.annotations)


def register_evaluator(key: str, evaluator: Evaluator) -> Evaluator:
    """Register an evaluator under ``key`` (called by the module that defines it)."""
    return _EVALUATORS.add(key, evaluator)


def get_evaluator(spec: DatasetSpec) -> Evaluator:
    """The evaluator of ``spec``; DataError when none is registered."""
    if spec.evaluator not in _EVALUATORS:
        raise DataError(f"dataset {spec.name!r}: no evaluator registered as {spec.evaluator!r}")
    return _EVALUATORS.get(spec.evaluator)
