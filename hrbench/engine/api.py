"""The engine's Python API: :func:`resolve_config`, :func:`train`, :func:`evaluate_checkpoint`.

``train`` runs in one process or, launched by ``torchrun --nproc_per_node N -m hrbench.engine
train ...``, in ``N`` (gloo on CPU, NCCL on CUDA); only rank 0 writes the run folder.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from hrbench.engine import dist as D
from hrbench.engine.recipes import get_recipe, resolve_training
from hrbench.engine.runs import SUMMARY_FORMAT, RunDir, default_run_name, now_iso, write_json_atomic
from hrbench.engine.trainer import CHECKPOINT_FORMAT, Evaluator, Trainer, seed_everything
from hrbench.errors import CheckpointError, ConfigError, DataError, HrbenchError

CONFIG_FORMAT = "hrbench-config-v1"
DATASET_METRIC = {"coco": "AP", "mpii": "PCKh"}


# ---------------------------------------------------------------------------------------------- config
def _check_dataset(dataset: str) -> str:
    from hrbench.cli.options import DATASET_KEYPOINTS

    if dataset not in DATASET_KEYPOINTS:
        raise ConfigError(f"unknown dataset {dataset!r}: expected coco or mpii")
    return dataset


def resolve_config(arch: str, data: str | Path | None = None, dataset: str = "coco", epochs: int | None = None,
                   batch_size: int | None = None, input_hw: tuple[int, int] | None = None,
                   overrides: dict[str, Any] | None = None, out: str | Path | None = "runs", name: str | None = None,
                   seed: int = 0, amp: str | None = None, channels_last: bool = False, workers: int = 2,
                   val_interval: int = 1, lr: float | None = None, train_overrides: dict[str, Any] | None = None,
                   val_flip: bool = True, world_size: int | None = None, gpu_aug: bool = False) -> dict[str, Any]:
    """The fully resolved configuration of a training run (recipe + overrides); builds nothing.

    Raises :class:`ConfigError` (one line) for an unknown architecture/dataset, an unknown model
    hyper-parameter or an out-of-range value.
    """
    from hrbench.cli.options import DATASET_INPUT, DATASET_KEYPOINTS
    from hrbench.registry import create_config, get_entry

    entry = get_entry(arch)
    dataset = _check_dataset(dataset)
    overrides = dict(overrides or {})
    create_config(entry.name, **overrides)  # validates the model overrides
    input_hw = tuple(input_hw) if input_hw is not None else DATASET_INPUT[dataset]
    if len(input_hw) != 2 or any(not isinstance(v, int) or v < 1 for v in input_hw):
        raise ConfigError(f"invalid input size {input_hw!r}: expected two positive integers (H, W)")
    if input_hw[0] % 4 or input_hw[1] % 4:
        raise ConfigError(f"invalid input size {input_hw[0]}x{input_hw[1]}: height and width must be multiples of 4")
    if not isinstance(val_interval, int) or val_interval < 1:
        raise ConfigError(f"invalid val interval {val_interval!r}: must be an integer >= 1")
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"invalid workers {workers!r}: must be an integer >= 0")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"invalid seed {seed!r}: must be a non-negative integer")
    if amp is not None and amp not in ("bf16", "fp16"):
        raise ConfigError(f"invalid --amp {amp!r}: expected bf16 or fp16")
    world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    recipe = get_recipe(entry.paper, dataset, input_hw)
    training = resolve_training(recipe, epochs=epochs, batch_size=batch_size, world_size=world, lr=lr,
                                train_overrides=train_overrides)
    run_name = name or default_run_name(entry.name, dataset, input_hw)
    if "/" in run_name or run_name in (".", ".."):
        raise ConfigError(f"invalid run name {run_name!r}: must be a plain folder name")
    return {
        "format": CONFIG_FORMAT,
        "arch": entry.name,
        "paper": entry.paper,
        "overrides": overrides,
        "dataset": dataset,
        "data": None if data is None else str(Path(data).resolve()),
        "input": list(input_hw),
        "keypoints": DATASET_KEYPOINTS[dataset],
        "metric": DATASET_METRIC[dataset],
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
        "train": training,
        "val_interval": val_interval,
        "val_flip": val_flip,
        "amp": amp,
        "channels_last": bool(channels_last),
        "gpu_aug": bool(gpu_aug),
        "workers": workers,
        "name": run_name,
        "run_dir": None if out is None else str(Path(out) / run_name),
    }


# ---------------------------------------------------------------------------------------------- data
def _data_root(data: str | Path | None) -> Path:
    if data is None:
        raise DataError("no data directory given (--data DIR)")
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist" if not root.exists()
                        else f"data path {root} is not a directory")
    return root


def build_split(dataset: str, data: str | Path, split: str, input_hw: tuple[int, int], train: bool,
                det_file: str | Path | None = None, det_score_thr: float = 0.0) -> Dataset:
    """One split through :func:`hrbench.data.build_dataset`."""
    from hrbench.data import build_dataset

    return build_dataset(dataset, _data_root(data), split, tuple(input_hw), train=train,
                         det_file=det_file, det_score_thr=det_score_thr)


def make_evaluator(out_dir: str | Path | None = None, flip: bool = True, dark: bool = False,
                   box_source: str | None = None, batch_size: int = 32, workers: int = 0,
                   amp: bool = False) -> Evaluator:
    """``evaluator(model, val_set, info, device)``: each rank predicts its shard (samples
    ``rank, rank + W, ...``), rank 0 merges the parts in dataset order (by ``bbox_id``) and scores them
    with :func:`hrbench.evaluation.evaluate`; other ranks return ``{}``."""

    def evaluator(model: nn.Module, val_set: Dataset, info: D.DistInfo, device: torch.device) -> dict[str, Any]:
        from hrbench.evaluation import evaluate, merge_predictions, predict

        sampler = D.shard(len(val_set), info) if info.distributed else None
        preds = predict(model, val_set, batch_size=batch_size, flip_test=flip, device=device, amp=amp,
                        num_workers=workers, post_process="dark" if dark else "default", sampler=sampler)
        if info.distributed:
            preds = merge_predictions(D.all_gather_objects(preds))
        if not info.is_main:
            return {}
        metrics = dict(evaluate(val_set, preds, out_dir, flip=flip, box_source=box_source))
        if "PCKh" not in metrics and "Mean" in metrics:  # MPII: the papers' "PCKh" is the PCKh@0.5 mean
            metrics["PCKh"] = metrics["Mean"]
        return metrics

    return evaluator


# ---------------------------------------------------------------------------------------------- train
def _stamp(m: dict[str, Any] | None, cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Validation metrics with their stamps (evaluation's own stamps win where it set them)."""
    if m is None:
        return None
    h, w = cfg["input"]
    return {"box_source": "gt", "flip": cfg["val_flip"], "input": f"{h}x{w}", **m}


def build_summary(trainer: Trainer, cfg: dict[str, Any], run: RunDir | None, status: str,
                  created: str) -> dict[str, Any]:
    """The ``summary.json`` content (schema: :mod:`hrbench.engine.runs`); ``run`` None: no folder."""
    return {
        "format": SUMMARY_FORMAT,
        "name": cfg["name"],
        "run_dir": None if run is None else str(run.path),
        "status": status,
        "arch": cfg["arch"],
        "overrides": cfg["overrides"],
        "dataset": cfg["dataset"],
        "input": cfg["input"],
        "keypoints": cfg["keypoints"],
        "params": sum(p.numel() for p in trainer.raw_model.parameters()),
        "epochs": cfg["train"]["epochs"],
        "epochs_done": trainer.epoch,
        "iterations": trainer.iteration,
        "seed": cfg["seed"],
        "world_size": cfg["train"]["world_size"],
        "total_batch": cfg["train"]["total_batch"],
        "lr": cfg["train"]["lr"],
        "recipe": cfg["recipe"]["source"],
        "metric": cfg["metric"],
        "initial": _stamp(trainer.initial, cfg),
        "final": _stamp(trainer.final, cfg),
        "best": _stamp(trainer.best, cfg),
        "checkpoints": {"last": str(run.last) if run is not None and run.last.exists() else None,
                        "best": str(run.best) if run is not None and run.best.exists() else None},
        "train_time_s": trainer.train_time,
        "created": created,
        "updated": now_iso(),
    }


def _locate_resume(resume: bool | str | Path, out: str | Path | None, name: str | None) -> Path:
    """The run folder to resume: ``resume`` as a run folder / checkpoint path, or ``<out>/<name>``."""
    if resume is True:
        if not name:
            raise ConfigError("--resume needs --name (the run folder under --out) to know which run to continue")
        path = Path(out or "runs") / name
    else:
        path = Path(resume)
        if path.is_file():
            path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not (path / "checkpoints" / "last.pt").exists():
        raise CheckpointError(f"cannot resume {path}: no checkpoints/last.pt there")
    return path


def train(arch: str, data: str | Path | None, dataset: str = "coco", epochs: int | None = None,
          batch_size: int | None = None, input_hw: tuple[int, int] | None = None,
          overrides: dict[str, Any] | None = None, out: str | Path | None = "runs", name: str | None = None,
          device: str = "auto", seed: int = 0, amp: str | None = None, channels_last: bool = False,
          workers: int = 2, val_interval: int = 1, resume: bool | str | Path = False, progress: bool = True,
          lr: float | None = None, train_overrides: dict[str, Any] | None = None, val_flip: bool = True,
          validate_first: bool = False, stop_after: int | None = None, log_interval: int = 50,
          console=None, gpu_aug: bool = False) -> dict[str, Any]:
    """Train ``arch`` top-down on ``data`` and return the run summary (``summary.json``).

    ``out``/``name``: run folder ``<out>/<name>``. ``resume``: True (continue ``<out>/<name>``), or
    a run folder / checkpoint path. ``validate_first``: also validate the untrained model (summary
    key ``initial``). ``stop_after``: train at most this many epochs in this call (resume later).
    """
    info, dev = D.setup(device)
    run: RunDir | None = None
    try:
        ckpt = None
        if resume:
            from hrbench.checkpoint import read_checkpoint
            from hrbench.registry import resolve

            run_path = _locate_resume(resume, out, name)
            ckpt = read_checkpoint(run_path / "checkpoints" / "last.pt")
            if ckpt.get("format") != CHECKPOINT_FORMAT or not isinstance(ckpt.get("config"), dict):
                raise CheckpointError(f"cannot resume {run_path}: last.pt is not an hrbench training checkpoint")
            cfg = dict(ckpt["config"])
            if resolve(arch) != cfg["arch"]:
                raise CheckpointError(f"cannot resume {run_path}: it trains {cfg['arch']}, not {resolve(arch)}")
            if epochs is not None and epochs != cfg["train"]["epochs"]:
                raise ConfigError(f"cannot change --epochs on resume: {run_path} was configured for "
                                  f"{cfg['train']['epochs']} epochs")
            if cfg["train"]["world_size"] != info.world_size:
                raise ConfigError(f"cannot resume {run_path} with {info.world_size} process(es): it was trained "
                                  f"with {cfg['train']['world_size']} (the total batch would change)")
            cfg["workers"] = workers
            if data is not None:
                cfg["data"] = str(Path(data).resolve())
            cfg["run_dir"] = str(run_path)
            run = RunDir(run_path)
        else:
            cfg = resolve_config(arch, data, dataset, epochs, batch_size, input_hw, overrides, out, name, seed, amp,
                                 channels_last, workers, val_interval, lr, train_overrides, val_flip,
                                 world_size=info.world_size, gpu_aug=gpu_aug)
            cfg = D.broadcast_object(cfg)  # one run name (time stamp) for every rank
            if cfg["run_dir"] is not None:
                run = RunDir(cfg["run_dir"])
                if run.path.exists():
                    raise ConfigError(f"run folder {run.path} already exists; pass --resume to continue it "
                                      "or choose another --name")
        _data_root(cfg["data"])
        hw = tuple(cfg["input"])
        from hrbench.registry import create_model

        seed_everything(cfg["seed"])
        model = create_model(cfg["arch"], num_keypoints=cfg["keypoints"], **cfg["overrides"])
        train_set = build_split(cfg["dataset"], cfg["data"], "train", hw, train=True)
        val_set = build_split(cfg["dataset"], cfg["data"], "val", hw, train=False)
        _check_keypoints(train_set, cfg)
        evaluator = make_evaluator(None, flip=cfg["val_flip"], batch_size=cfg["train"]["batch_per_process"],
                                   workers=0, amp=cfg["amp"] is not None)
        if console is None and info.is_main and progress:
            from rich.console import Console

            console = Console(stderr=True)
        from hrbench.data import collate

        trainer = Trainer(model, train_set, val_set, cfg, run, dev, info, evaluator=evaluator, progress=progress,
                          log_interval=log_interval, console=console, collate=collate)
        created = now_iso()
        if ckpt is not None:
            trainer.load_state(ckpt)
            created = _read_created(run) or created
            trainer._event({"event": "resume", "epoch": trainer.epoch, "iter": trainer.iteration})
            trainer._say(f"resumed {run.path} at epoch {trainer.epoch} (iteration {trainer.iteration})")
        else:
            trainer._say(f"training {cfg['arch']} on {cfg['dataset']} {hw[0]}x{hw[1]}: {cfg['train']['epochs']} "
                         f"epochs, batch {cfg['train']['total_batch']}, lr {cfg['train']['lr']:.3g}, "
                         f"{len(train_set)} train / {len(val_set)} val samples, device {dev}"
                         + (f" x {info.world_size}" if info.distributed else ""))

        def on_checkpoint(tr: Trainer, improved: bool) -> None:
            if run is None:
                return
            from hrbench.checkpoint import save_checkpoint

            payload = tr.payload()
            first = not run.path.exists()
            run.materialize()
            if first:
                write_json_atomic(run.config_path, cfg)
            save_checkpoint(run.last, payload)
            if improved:
                save_checkpoint(run.best, payload)
            write_json_atomic(run.summary_path, build_summary(tr, cfg, run, "running", created))

        t0 = time.perf_counter()
        trainer.fit(stop_after=stop_after, validate_first=validate_first, on_checkpoint=on_checkpoint)
        done = trainer.epoch >= cfg["train"]["epochs"]
        summary = build_summary(trainer, cfg, run, "finished" if done else "running", created)
        if run is not None and info.is_main:
            if run.path.exists():
                write_json_atomic(run.summary_path, summary)
            trainer._say(f"{'finished' if done else 'stopped'} after epoch {trainer.epoch} "
                         f"({time.perf_counter() - t0:.1f}s); best {cfg['metric']}: "
                         f"{None if trainer.best is None else trainer.best.get(cfg['metric'])}")
        return summary
    except BaseException:
        if run is not None and info.is_main:
            run.discard_if_new()
        raise


def _read_created(run: RunDir) -> str | None:
    try:
        return run.read_json(run.summary_path).get("created")
    except (OSError, ValueError):
        return None


def _check_keypoints(ds: Dataset, cfg: dict[str, Any]) -> None:
    k = getattr(ds, "num_keypoints", None)
    if isinstance(k, int) and k != cfg["keypoints"]:
        raise DataError(f"the {cfg['dataset']} data in {cfg['data']} has {k} keypoints, expected {cfg['keypoints']}")


# ---------------------------------------------------------------------------------------------- eval
def evaluate_checkpoint(arch: str, checkpoint: str | Path | dict[str, Any], data: str | Path,
                        dataset: str | None = None, input_hw: tuple[int, int] | None = None, flip: bool = True,
                        dark: bool = False, det_file: str | Path | None = None, det_thr: float = 0.0,
                        device: str = "auto", batch_size: int = 32, workers: int = 2,
                        out_dir: str | Path | None = None,
                        overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate an hrbench or official checkpoint of ``arch`` on the val split of ``data``.

    Dataset, input size and hyper-parameter overrides default to the checkpoint's own (hrbench
    checkpoints) or to the dataset's defaults. Returns the metrics with their stamps
    (``arch``, ``checkpoint``, ``dataset``, ``input``, ``flip``, ``dark``, ``box_source``).
    """
    from hrbench.checkpoint import load_checkpoint, read_checkpoint
    from hrbench.cli.options import DATASET_INPUT, DATASET_KEYPOINTS
    from hrbench.registry import create_model, resolve

    canonical = resolve(arch)
    if batch_size < 1:
        raise ConfigError(f"invalid batch size {batch_size}: must be >= 1")
    if det_thr < 0 or det_thr > 1:
        raise ConfigError(f"invalid --det-thr {det_thr}: must be in [0, 1]")
    if det_file is not None and not Path(det_file).is_file():
        raise DataError(f"detection file {det_file} does not exist")
    root = _data_root(data)
    source = str(checkpoint) if not isinstance(checkpoint, dict) else "<in-memory checkpoint>"
    ckpt = read_checkpoint(checkpoint) if not isinstance(checkpoint, dict) else checkpoint
    saved_cfg: dict[str, Any] = {}
    ovr = dict(overrides or {})
    if ckpt.get("format") == CHECKPOINT_FORMAT:
        if str(ckpt.get("arch")) != canonical:
            try:
                other = resolve(str(ckpt.get("arch")))
            except HrbenchError:
                other = str(ckpt.get("arch"))
            if other != canonical:
                raise CheckpointError(f"checkpoint {source} is for architecture {other}, not {canonical}")
        saved_cfg = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
        ovr = {**(ckpt.get("overrides") or {}), **ovr}
    dataset = _check_dataset(dataset or saved_cfg.get("dataset") or "coco")
    hw = tuple(input_hw or saved_cfg.get("input") or DATASET_INPUT[dataset])
    k = int(ckpt.get("num_keypoints") or DATASET_KEYPOINTS[dataset]) if ckpt.get("format") == CHECKPOINT_FORMAT \
        else DATASET_KEYPOINTS[dataset]
    if k != DATASET_KEYPOINTS[dataset]:
        raise CheckpointError(f"checkpoint {source} predicts {k} keypoints; {dataset} has {DATASET_KEYPOINTS[dataset]}")
    info, dev = D.setup(device)
    model = create_model(canonical, num_keypoints=k, **ovr)
    load_checkpoint(model, ckpt, strict=True, source=str(checkpoint))
    model.to(dev).eval()
    val_set = build_split(dataset, root, "val", hw, train=False, det_file=det_file, det_score_thr=det_thr)
    box_source = str(getattr(val_set, "box_source", "detections" if det_file is not None else "gt"))
    evaluator = make_evaluator(out_dir, flip=flip, dark=dark, box_source=box_source, batch_size=batch_size,
                               workers=workers)
    t = time.perf_counter()
    metrics = evaluator(model, val_set, info, dev)
    metrics = D.broadcast_object(metrics if info.is_main else None)
    return {"box_source": box_source, "flip": flip, "input": f"{hw[0]}x{hw[1]}", **metrics, "arch": canonical,
            "checkpoint": source, "dataset": dataset, "dark": dark, "samples": len(val_set),
            "eval_time_s": time.perf_counter() - t}
