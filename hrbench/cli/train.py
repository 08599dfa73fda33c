"""``hrbench train`` and ``hrbench eval``: the shared top-down engine (:mod:`hrbench.engine`) on the CLI.

Several processes: ``torchrun --nproc_per_node N -m hrbench train ARCH --data DIR ...``
(``--batch`` is per process everywhere in hrbench; the recipe's lr is scaled to the total batch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import (
    DATA_LAYOUT_TEXT,
    DATASET_INPUT_TEXT,
    make_console,
    parse_input,
    parse_overrides,
    print_json,
)
from hrbench.cli.root import app
from hrbench.errors import HrbenchError


def split_overrides(items: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` items -> (model hyper-parameters, training settings ``train.KEY``)."""
    model, training = {}, {}
    for key, value in parse_overrides(items).items():
        if key.startswith("train."):
            training[key[len("train."):]] = value
        else:
            model[key] = value
    return model, training


def _print_metrics(console: Console, title: str, metrics: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)


@app.command("train")
def train_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias (see `hrbench list`)"),
    data: Path = options.data_option(None, f"dataset root ({DATA_LAYOUT_TEXT}; `hrbench data synth` writes one)"),
    dataset: str = options.dataset_option(),
    epochs: int = typer.Option(None, "--epochs", help="epochs (default: the recipe's; schedule scaled to it); "
                               "with --resume: extend the run to this many epochs"),
    batch: int = options.batch_option(None, "per process (default: the recipe's per-GPU batch); the total batch "
                                      "is this x processes, and the recipe's lr is scaled to it"),
    input_size: str = options.input_option(f"the dataset's: {DATASET_INPUT_TEXT}"),
    sets: list[str] = typer.Option(None, "--set", help="KEY=VALUE model hyper-parameter, or train.KEY=VALUE "
                                   "(lr, lr_steps, gamma, warmup_iters, warmup_ratio, weight_decay, "
                                   "optimizer adam|adamw, schedule step|flat-cosine, cosine_begin, eta_min_ratio, "
                                   "norm_decay_mult, bias_decay_mult, clip_grad_norm, ema none|exp-momentum, "
                                   "ema_momentum, ema_gamma, ema_interval, augment msra|rtmpose, stage2_begin)"),
    lr: float = typer.Option(None, "--lr", help="base learning rate as used (no linear scaling)"),
    amp: str = typer.Option(None, "--amp", help="precision: fp32 (default) | bf16 | fp16 (with loss scaling)"),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last",
                                       help="channels-last memory format (default off)"),
    gpu_aug: bool = typer.Option(None, "--gpu-aug/--no-gpu-aug",
                                 help="affine warp + heatmap targets on the training device (default off)"),
    device: str = options.device_option(),
    workers: int = options.workers_option(),
    threads: str = options.threads_option(),
    out: Path = options.out_option(Path("runs"), "folder: the runs registry (one folder per run)"),
    name: str = typer.Option(None, "--name", help="run folder name (default <arch>-<dataset>-<HxW>-<time>)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run <out>/<name> from checkpoints/last.pt "
                                "with its own settings (options that differ are refused; --epochs may extend it)"),
    seed: int = options.seed_option(None, "random seed (default 0)"),
    val_interval: int = typer.Option(None, "--val-interval", help="validate every N epochs and after the last "
                                     "(default 1)"),
    val_flip: bool = typer.Option(None, "--val-flip/--no-val-flip", help="validate with flip test (default on)"),
    validate_first: bool = typer.Option(False, "--validate-first", help="also validate the untrained model"),
    print_config: bool = typer.Option(False, "--print-config", help="print the resolved configuration and exit"),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
    tensorboard: bool = typer.Option(True, "--tensorboard/--no-tensorboard",
                                     help="write TensorBoard event files to <run>/tb/ (default on)"),
    as_json: bool = options.json_option("the run summary"),
) -> None:
    """Train ARCH top-down on COCO/MPII with its paper's recipe; writes runs/<name>/ (config, metrics, checkpoints).
    Several processes: torchrun --nproc_per_node N -m hrbench train ..."""
    from hrbench.engine import TrainOptions, resolve_config, train

    hw = parse_input(input_size) if input_size else None
    model_overrides, train_overrides = split_overrides(sets)
    opts = TrainOptions(arch, data, dataset=dataset, input_hw=hw, batch=batch, lr=lr, seed=seed, amp=amp,
                        channels_last=channels_last, gpu_aug=gpu_aug, val_interval=val_interval, val_flip=val_flip,
                        overrides=model_overrides, train_overrides=train_overrides, epochs=epochs, out=out, name=name,
                        resume=resume, device=device, workers=workers, threads=threads, validate_first=validate_first,
                        progress=not no_progress and not as_json, tensorboard=tensorboard)
    if print_config:
        return print_json(resolve_config(opts).to_dict())
    if data is None and not resume:
        raise HrbenchError("missing --data DIR (the dataset root)")
    summary = train(opts)
    if as_json:
        return print_json(summary)
    console = make_console()
    console.print(f"run folder: {summary['run_dir']}  ({summary['epochs_done']}/{summary['epochs']} epochs, "
                  f"{summary['train_time_s']:.1f}s)")
    if summary.get("best"):
        _print_metrics(console, f"best validation (epoch {summary['best'].get('epoch')})", summary["best"])


@app.command("eval")
def eval_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias"),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="hrbench or official (mmpose) checkpoint"),
    data: Path = options.data_option(..., f"dataset root ({DATA_LAYOUT_TEXT})"),
    dataset: str = options.dataset_option(shown="the checkpoint's, else coco"),
    input_size: str = options.input_option("the checkpoint's"),
    sets: list[str] = typer.Option(None, "--set", help="KEY=VALUE model hyper-parameter (default: the checkpoint's)"),
    no_flip: bool = typer.Option(False, "--no-flip", help="no flip test"),
    dark: bool = typer.Option(False, "--dark", help="DARK (distribution-aware) keypoint decoding"),
    det_file: Path = typer.Option(None, "--det-file", help="COCO person detections json (default: GT boxes)"),
    det_thr: float = options.probability_option(None, "--det-thr", "keep detections with score >= T (with --det-file)"),
    batch: int = options.batch_option(32, "per process"),
    amp: str = typer.Option(None, "--amp", help="precision: fp32 | bf16 | fp16 (default: the run's, else fp32)"),
    device: str = options.device_option(),
    workers: int = options.workers_option(),
    threads: str = options.threads_option(),
    out: Path = options.out_option(None, "folder: the keypoint results file (default: none written)"),
    as_json: bool = options.json_option("the metrics"),
) -> None:
    """Evaluate a checkpoint of ARCH on the val split: COCO AP (GT or detected boxes) or MPII PCKh."""
    from hrbench.engine import evaluate_checkpoint

    if det_thr is not None and det_file is None:
        raise HrbenchError("--det-thr needs --det-file")
    hw = parse_input(input_size) if input_size else None
    metrics = evaluate_checkpoint(arch, checkpoint, data, dataset=dataset, input_hw=hw, flip=not no_flip, dark=dark,
                                  det_file=det_file, det_thr=det_thr or 0.0, device=device, batch_size=batch,
                                  workers=workers, out_dir=out, overrides=parse_overrides(sets) or None, amp=amp,
                                  threads=threads)
    if as_json:
        return print_json(metrics)
    title = f"{metrics['arch']} on {metrics['dataset']} val ({metrics['box_source']} boxes)"
    _print_metrics(make_console(), title, metrics)
