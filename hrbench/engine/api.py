"""The engine's Python API: :func:`train` (a :class:`~hrbench.engine.run_config.TrainOptions`, or the same as
keywords), :func:`evaluate_checkpoint` (and :func:`resolve_config`).

``train`` runs in one process or, launched by ``torchrun --nproc_per_node N -m hrbench
train ...``, in ``N`` (gloo on CPU, NCCL on CUDA); only rank 0 writes the run folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from hrbench.checkpoint import FORMAT, check_finite, read_checkpoint, save_checkpoint
from hrbench.data import build_dataset, collate, verify_images
from hrbench.engine import dist as D
from hrbench.engine.resume import locate_run, resumed_config
from hrbench.engine.run_config import RunConfig, TrainOptions, resolve_config
from hrbench.engine.runlog import RunLog
from hrbench.engine.runs import SUMMARY_FORMAT, RunDir, now_iso, read_summary
from hrbench.engine.samples import seed_everything
from hrbench.engine.tblog import TensorBoardLog
from hrbench.engine.trainer import Evaluator, Trainer
from hrbench.errors import CheckpointError, ConfigError, DataError, DivergedError, HrbenchError
from hrbench.evaluation import evaluate, merge_predictions, predict
from hrbench.factory import create_model, restore_model
from hrbench.fsutil import check_output_dir, write_json_atomic
from hrbench.manifest import refuse_foreign
from hrbench.memory import check_step_memory
from hrbench.precision import normalize_amp
from hrbench.signals import interruptible
from hrbench.stack import software_stack
from hrbench.threads import configure_threads

__all__ = ["TrainOptions", "build_summary", "evaluate_checkpoint", "make_evaluator", "resolve_config", "train"]


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
    return build_dataset(dataset, _data_root(data), split, tuple(input_hw), train=train,
                         det_file=det_file, det_score_thr=det_score_thr)


def make_evaluator(out_dir: str | Path | None = None, flip: bool = True, dark: bool = False,
                   box_source: str | None = None, batch_size: int = 32, workers: int = 0,
                   amp: str | None = None) -> Evaluator:
    """``evaluator(model, val_set, info, device)``: each rank predicts its shard (samples
    ``rank, rank + W, ...``), rank 0 merges the parts in dataset order (by ``bbox_id``) and scores them
    with :func:`hrbench.evaluation.evaluate`; other ranks return ``{}``. ``amp``: the run's precision
    (``bf16``/``fp16``/None), so a model is validated in the precision it was trained in."""

    def evaluator(model: nn.Module, val_set: Dataset, info: D.DistInfo, device: torch.device) -> dict[str, Any]:
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
def _stamp(m: dict[str, Any] | None, cfg: RunConfig) -> dict[str, Any] | None:
    """Validation metrics with their stamps (evaluation's own stamps win where it set them)."""
    if m is None:
        return None
    h, w = cfg.input_hw
    return {"box_source": "gt", "flip": cfg.val_flip, "input": f"{h}x{w}", **m}


def build_summary(trainer: Trainer, cfg: RunConfig, run: RunDir | None, status: str,
                  created: str) -> dict[str, Any]:
    """The ``summary.json`` content (schema: :mod:`hrbench.engine.runs`); ``run`` None: no folder."""
    return {
        "format": SUMMARY_FORMAT,
        "name": cfg.name,
        "run_dir": None if run is None else str(run.path),
        "status": status,
        "arch": cfg.arch,
        "overrides": cfg.overrides,
        "dataset": cfg.dataset,
        "input": list(cfg.input_hw),
        "keypoints": cfg.keypoints,
        "params": sum(p.numel() for p in trainer.raw_model.parameters()),
        "epochs": cfg.train.epochs,
        "epochs_done": trainer.epoch,
        "iterations": trainer.iteration,
        "seed": cfg.seed,
        "world_size": cfg.train.world_size,
        "total_batch": cfg.train.total_batch,
        "lr": cfg.train.lr,
        "recipe": cfg.recipe.source,
        "optimizer": cfg.train.optimizer,
        "schedule": cfg.train.schedule,
        "augment": cfg.train.augment,
        "weights": "trained" if cfg.train.ema == "none" else "ema",  # what checkpoints' state_dict holds
        "metric": cfg.metric,
        "initial": _stamp(trainer.initial, cfg),
        "final": _stamp(trainer.final, cfg),
        "best": _stamp(trainer.best, cfg),
        "checkpoints": {"last": str(run.last) if run is not None and run.last.exists() else None,
                        "best": str(run.best) if run is not None and run.best.exists() else None},
        "train_time_s": trainer.train_time,
        "created": created,
        "updated": now_iso(),
        "stack": software_stack(trainer.device, cfg.amp, world_size=cfg.train.world_size),
    }


def _open_resumed(o: TrainOptions, info: D.DistInfo) -> tuple[RunConfig, dict, RunDir, list[str]]:
    """(config, checkpoint, locked run folder) of the run to continue (rank 0 checks, every rank agrees)."""
    run_path = locate_run(o.resume, o.out, o.name)
    ckpt = read_checkpoint(run_path / "checkpoints" / "last.pt")
    if ckpt.get("format") != FORMAT or not isinstance(ckpt.get("config"), dict):
        raise CheckpointError(f"cannot resume {run_path}: last.pt is not an hrbench training checkpoint")
    for weights in ("state_dict", "train_state_dict"):  # the second: the trained weights of an EMA run
        check_finite(ckpt.get(weights) or {}, str(run_path / "checkpoints" / "last.pt"))
    try:
        saved = RunConfig.from_dict(ckpt["config"])
    except ConfigError as exc:
        raise CheckpointError(f"cannot resume {run_path}: its checkpoint's configuration is {exc}") from None
    cfg = resumed_config(saved, o, epochs_done=int(ckpt.get("epoch", 0)), world_size=info.world_size,
                         run_path=run_path)
    run = RunDir(run_path)
    notes = D.on_main(run.claim_existing)
    return cfg, ckpt, run, notes


def _build_data(cfg: RunConfig) -> tuple[Dataset, Dataset]:
    """The train and val splits; every val image is checked to decode before any training."""
    train_set = build_split(cfg.dataset, cfg.data, "train", cfg.input_hw, train=True)
    val_set = build_split(cfg.dataset, cfg.data, "val", cfg.input_hw, train=False)
    _check_keypoints(train_set, cfg)
    D.on_main(lambda: verify_images(val_set))
    return train_set, val_set


def _check_input(model: nn.Module, cfg: RunConfig) -> None:
    """Refuse an input size the network cannot take before anything runs (multi-branch nets need a
    multiple of 4 x 2^(branches - 1))."""
    try:
        model.check_input_size(*cfg.input_hw)
    except HrbenchError as exc:
        h, w = cfg.input_hw
        raise ConfigError(f"invalid --input {h}x{w} for {cfg.arch}: {exc}") from None


def _checkpointer(run: RunDir | None, cfg: RunConfig, created: str) -> Callable[[Trainer, bool], None]:
    """``on_checkpoint`` of :meth:`Trainer.fit`: config (first time), last.pt, best.pt, summary."""

    def on_checkpoint(tr: Trainer, improved: bool) -> None:
        if run is None:
            return
        payload = tr.payload()
        first = not run.config_path.exists()
        run.materialize()
        if first:
            write_json_atomic(run.config_path, cfg.to_dict())
        save_checkpoint(run.last, payload)
        if improved:
            save_checkpoint(run.best, payload)
        write_json_atomic(run.summary_path, build_summary(tr, cfg, run, "running", created))

    return on_checkpoint


@interruptible  # SIGTERM (Slurm) stops a run as Ctrl-C does
def train(options: TrainOptions | str, data: str | Path | None = None, *, console=None,
          **kw: Any) -> dict[str, Any]:
    """Train top-down and return the run summary (``summary.json``).

    ``options``: a :class:`~hrbench.engine.run_config.TrainOptions`, or the architecture with the data
    root and the other options as keywords (``train("lite18", "data/coco", epochs=2, batch=16)``).
    Options left ``None`` take the recipe's / the defaults of :func:`resolve_config`; on resume they
    must be left out or equal the run's (:mod:`hrbench.engine.resume`). Run folder ``<out>/<name>``,
    locked while the run uses it. ``console``: where the main rank prints (default: stderr, with progress).
    """
    if isinstance(options, str):
        options = TrainOptions(options, data, **kw)
    elif data is not None or kw:
        raise TypeError("train(options) takes the options object alone")
    o = options
    n_threads, why = configure_threads(o.threads)
    info, dev = D.setup(o.device)
    run: RunDir | None = None
    tb: TensorBoardLog | None = None
    try:
        if o.resume:
            cfg, ckpt, run, notes = _open_resumed(o, info)
        else:
            ckpt = None
            cfg, run, notes = _open_new(o, info)
        seed_everything(cfg.seed)
        model = create_model(cfg.arch, num_keypoints=cfg.keypoints, **cfg.overrides)
        _check_input(model, cfg)
        check_step_memory(model, cfg.input_hw, cfg.train.batch, dev, train=True, keypoints=cfg.keypoints,
                          workers=cfg.workers, ema=cfg.train.ema != "none")
        train_set, val_set = _build_data(cfg)
        train_set.codec = val_set.codec = model.codec  # targets encoded as the model's head reads them
        evaluator = make_evaluator(None, flip=cfg.val_flip, batch_size=cfg.train.batch, workers=cfg.workers,
                                   amp=cfg.amp)
        if console is None and info.is_main and o.progress:
            console = Console(stderr=True)
        log = RunLog(run, console, info.is_main)
        if o.tensorboard and run is not None and info.is_main:
            tb = TensorBoardLog(run.path / "tb", purge_step=int(ckpt["iteration"]) + 1 if ckpt is not None else None)
        trainer = Trainer(model, train_set, val_set, cfg, run, dev, info, evaluator=evaluator, progress=o.progress,
                          log_interval=o.log_interval, log=log, collate=collate, tb=tb)
        for note in notes:
            log.say(note)
        created = _start(trainer, cfg, run, ckpt, info, dev, (len(train_set), len(val_set)),
                         f"{n_threads} CPU thread(s) ({why})")
        return _fit(trainer, cfg, run, info, created, o.stop_after, o.validate_first)
    except BaseException:
        if run is not None and info.is_main:
            run.discard_if_new()
        raise
    finally:
        if tb is not None:
            tb.close()
        if run is not None:
            run.release()


def _open_new(o: TrainOptions, info: D.DistInfo) -> tuple[RunConfig, RunDir | None, list[str]]:
    """A new run: its resolved configuration (one run name on every rank) and its claimed folder."""
    if o.out is not None:
        check_output_dir(o.out)
    cfg = D.broadcast_object(resolve_config(o, world_size=info.world_size))  # one run name (time stamp) everywhere
    _data_root(cfg.data)
    if cfg.run_dir is None:
        return cfg, None, []
    run = RunDir(cfg.run_dir)
    return cfg, run, D.on_main(run.claim_new)  # atomic: a second run with this name is refused


def _start(trainer: Trainer, cfg: RunConfig, run: RunDir | None, ckpt: dict[str, Any] | None,
           info: D.DistInfo, dev: torch.device, samples: tuple[int, int], threads: str) -> str:
    """Restore the resumed state (if any) and say what is about to run; the run's creation time."""
    created = now_iso()
    log = trainer.log
    if ckpt is not None:
        trainer.load_state(ckpt)
        created = (_read_summary(run) or {}).get("created") or created
        log.event({"event": "resume", "epoch": trainer.epoch, "iter": trainer.iteration})
        log.say(f"resumed {run.path} at epoch {trainer.epoch}/{cfg.train.epochs} "
                f"(iteration {trainer.iteration}); {threads}")
    else:
        t, (h, w) = cfg.train, cfg.input_hw
        log.say(f"training {cfg.arch} on {cfg.dataset} {h}x{w}: {t.epochs} epochs, batch {t.total_batch}, "
                f"lr {t.lr:.3g}, {samples[0]} train / {samples[1]} val samples, device {dev}"
                + (f" x {info.world_size}" if info.distributed else "") + f", {threads}")
    return created


def _fit(trainer: Trainer, cfg: RunConfig, run: RunDir | None, info: D.DistInfo, created: str,
         stop_after: int | None, validate_first: bool) -> dict[str, Any]:
    """Run the loop and write the final summary; Ctrl-C says what was kept."""
    t0 = time.perf_counter()
    try:
        trainer.fit(stop_after=stop_after, validate_first=validate_first,
                    on_checkpoint=_checkpointer(run, cfg, created))
    except DivergedError as exc:  # ``hrbench runs`` tells a diverged run from an interrupted one by this event
        trainer.log.event({"event": "diverged", "epoch": trainer.epoch, "iter": trainer.iteration,
                           "message": str(exc)})
        raise
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (hrbench.signals)
        if run is not None and info.is_main:
            run.mark_interrupted()
        if run is not None and run.last.exists():
            trainer.log.say(f"interrupted during epoch {trainer.epoch + 1}; {run.last} holds epoch "
                            f"{_saved_epoch(run)}: continue with --resume")
        raise
    done = trainer.epoch >= cfg.train.epochs
    summary = build_summary(trainer, cfg, run, "finished" if done else "running", created)
    if run is not None and info.is_main:
        if run.path.exists():
            write_json_atomic(run.summary_path, summary)
        best = None if trainer.best is None else trainer.best.get(cfg.metric)
        trainer.log.say(f"{'finished' if done else 'stopped'} after epoch {trainer.epoch} "
                        f"({time.perf_counter() - t0:.1f}s); best {cfg.metric}: {best}")
    return summary


def _saved_epoch(run: RunDir) -> int | str:
    return (_read_summary(run) or {}).get("epochs_done", "?")


def _read_summary(run: RunDir) -> dict[str, Any] | None:
    """The run's ``summary.json`` (written atomically), or None before its first checkpoint."""
    return read_summary(run.summary_path) if run.summary_path.exists() else None


def _check_keypoints(ds: Dataset, cfg: RunConfig) -> None:
    k = getattr(ds, "num_keypoints", None)
    if isinstance(k, int) and k != cfg.keypoints:
        raise DataError(f"the {cfg.dataset} data in {cfg.data} has {k} keypoints, expected {cfg.keypoints}")


# ---------------------------------------------------------------------------------------------- eval
def _detections(det_file: str | Path | None, root: Path) -> Path | None:
    """``--det-file`` as given, else relative to the data root (``annotations/dets.json``)."""
    if det_file is None:
        return None
    given = Path(det_file)
    for candidate in (given, root / given):
        if candidate.is_file():
            return candidate
    raise DataError(f"detection file {det_file} does not exist (looked in the working folder and under {root})")


def evaluate_checkpoint(arch: str, checkpoint: str | Path | dict[str, Any], data: str | Path,
                        dataset: str | None = None, input_hw: tuple[int, int] | None = None, flip: bool = True,
                        dark: bool = False, det_file: str | Path | None = None, det_thr: float = 0.0,
                        device: str = "auto", batch_size: int = 32, workers: int = 2,
                        out_dir: str | Path | None = None, overrides: dict[str, Any] | None = None,
                        amp: str | None = None, threads: int | str | None = None) -> dict[str, Any]:
    """Evaluate an hrbench or official checkpoint of ``arch`` on the val split of ``data``.

    Dataset, input size, hyper-parameter overrides and precision (``amp``: ``fp32``/``bf16``/``fp16``)
    default to the checkpoint's own (hrbench checkpoints) or to the dataset's defaults and fp32.
    ``det_file`` may be given relative to ``data``. Returns the metrics with their stamps
    (``arch``, ``checkpoint``, ``dataset``, ``input``, ``flip``, ``dark``, ``box_source``, ``amp``).
    """

    if batch_size < 1:
        raise ConfigError(f"invalid batch size {batch_size}: must be >= 1")
    if det_thr < 0 or det_thr > 1:
        raise ConfigError(f"invalid --det-thr {det_thr}: must be in [0, 1]")
    root = _data_root(data)
    det_file = _detections(det_file, root)
    if out_dir is not None:
        check_output_dir(out_dir)
        refuse_foreign(Path(out_dir), ["keypoints_val_results.json"])  # before the work; replaced only if hrbench's
    configure_threads(threads)
    restored = restore_model(arch, checkpoint, overrides, dataset, input_hw)
    model, canonical, dataset, hw, source = (restored.model, restored.arch, restored.dataset, restored.input_hw,
                                             restored.source)
    precision = restored.config.get("amp") if amp is None else normalize_amp(amp)
    info, dev = D.setup(device)
    model.to(dev)  # restore_model returns it in eval mode
    check_step_memory(model, tuple(hw), batch_size, dev, train=False, workers=workers)
    val_set = build_split(dataset, root, "val", hw, train=False, det_file=det_file, det_score_thr=det_thr)
    val_set.codec = model.codec
    box_source = str(getattr(val_set, "box_source", "detections" if det_file is not None else "gt"))
    evaluator = make_evaluator(out_dir, flip=flip, dark=dark, box_source=box_source, batch_size=batch_size,
                               workers=workers, amp=precision)
    t = time.perf_counter()
    metrics = evaluator(model, val_set, info, dev)
    metrics = D.broadcast_object(metrics if info.is_main else None)
    return {"box_source": box_source, "flip": flip, "input": f"{hw[0]}x{hw[1]}", **metrics, "arch": canonical,
            "checkpoint": source, "dataset": dataset, "dark": dark, "amp": precision or "fp32",
            "samples": len(val_set), "eval_time_s": time.perf_counter() - t}
