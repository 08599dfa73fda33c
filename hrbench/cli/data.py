"""``hrbench data synth`` (synthetic COCO/MPII-format data, :mod:`hrbench.data.synth`) and
``hrbench data show`` (a grid of the crops a model receives, keypoints and target heatmaps drawn)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

from hrbench.cli import options
from hrbench.cli.options import (
    DATA_LAYOUT_TEXT,
    DATASET_INPUT_TEXT,
    make_console,
    progress_bar,
    resolve_input,
)
from hrbench.cli.root import app
from hrbench.datasets import DEFAULT_DATASET
from hrbench.errors import DataError, HrbenchError

data_app = typer.Typer(help="Datasets: generate synthetic COCO/MPII-format data, look at training crops.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

#: What ``data synth`` writes at the top of a dataset root; ``--force`` replaces what hrbench wrote in these
#: (:mod:`hrbench.manifest`) and keeps every other file.
SYNTH_ENTRIES = ("annotations", "images", "person_detection_results")


def _existing_dataset(out: Path) -> list[str]:
    return [e for e in SYNTH_ENTRIES if (out / e).exists()]


@data_app.command("synth")
def synth_cmd(
    dataset: str = options.dataset_option(DEFAULT_DATASET),
    out: Path = options.out_option(..., "folder: the dataset root to write"),
    train: int = typer.Option(200, "--train", help="number of training images"),
    val: int = typer.Option(50, "--val", help="number of validation images"),
    seed: int = options.seed_option(0, "random seed (output is a deterministic function of it)"),
    force: bool = typer.Option(False, "--force", help="replace a data set hrbench wrote in --out (files hrbench "
                               "did not write there are kept, or refused where a new file would replace one)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Generate stick-figure images with annotations in the real COCO / MPII formats."""
    from hrbench.data.synth import generate
    from hrbench.manifest import commit, staging

    if train < 1 or val < 1:
        raise HrbenchError("--train and --val must be positive")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    found = _existing_dataset(out)
    if found and not force:
        raise DataError(f"--out {out} already holds a data set ({', '.join(found)}); "
                        "pass --force to replace it or choose another folder")
    with staging(out) as tmp:  # generated aside, moved in when complete: a failed run leaves the old set
        with progress_bar(make_console(stderr=True), f"[bold]synth {dataset}", disable=quiet) as bar:
            task = bar.add_task("images", total=train + val)
            summary = generate(dataset, tmp, train, val, seed, progress=lambda k: bar.advance(task, k))
        notes = commit(tmp, out, managed=SYNTH_ENTRIES)
    for note in notes:
        print(note, file=sys.stderr)
    s = summary["splits"]
    parts = ", ".join(f"{k}: {v['images']} images / {v['instances']} persons" for k, v in s.items())
    replaced = " (replaced the previous data set)" if found else ""
    print(f"wrote synthetic {dataset} to {out} ({parts}) in {summary['seconds']:.1f} s{replaced}")


def sample_tile(ds, idx: int, scale: int) -> np.ndarray:
    """One sample as the model receives it: the normalised crop brought back to RGB, target heatmaps
    blended on it, the joints drawn (side colours), and a caption (index, flip, rotation)."""
    import cv2

    from hrbench.data.crops import crop_joints
    from hrbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from hrbench.reports.overlay import draw_skeleton, heatmap_blend, put_text, skeleton

    s = ds[idx]
    img = s["image"].permute(1, 2, 0).numpy() * IMAGENET_STD + IMAGENET_MEAN
    img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    img = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    img = heatmap_blend(img, s["target"].numpy())
    pts, shown = crop_joints(ds, idx, s["meta"])
    names, limbs = skeleton(ds.name)
    draw_skeleton(img, (pts + 0.5) * scale - 0.5, shown, names, limbs, radius=2 * scale, thickness=scale)
    m = s["meta"]
    put_text(img, f"#{idx}{' flip' if m['flipped'] else ''} rot {m['rotation']:.0f}", (3, 12))
    return img


@data_app.command("show")
def show_cmd(
    root: Path = typer.Argument(..., help=f"dataset root in the --dataset's layout ({DATA_LAYOUT_TEXT})"),
    dataset: str = options.dataset_option(DEFAULT_DATASET),
    split: str = typer.Option("train", "--split", help="train | val"),
    n: int = typer.Option(16, "--n", help="number of samples"),
    augment: bool = typer.Option(False, "--augment", help="the training augmentation (flip, half body, "
                                 "scale, rotation)"),
    augment_set: str = typer.Option("msra", "--augment-set", help="with --augment: which set (a recipe's "
                                    "train.augment: msra = the dataset's own, rtmpose = RTMPose's two stages)"),
    stage: int = typer.Option(1, "--stage", help="with --augment-set rtmpose: its stage 1 or 2"),
    input_size: str = options.input_option(f"the dataset's: {DATASET_INPUT_TEXT}"),
    seed: int = options.seed_option(0, "which samples, and their augmentation"),
    out: Path = options.out_option(Path("data_show.png"), "file: the PNG grid"),
) -> None:
    """A grid of N crops as the model receives them, with the target heatmaps and the joints drawn
    (left side orange, right side blue): a broken flip pair or aspect ratio shows at a glance."""
    from hrbench.data import build_dataset
    from hrbench.fsutil import check_output_file
    from hrbench.reports.overlay import grid, write_png

    if split not in ("train", "val"):
        raise HrbenchError(f"unknown --split {split!r}: expected train or val")
    if n < 1:
        raise HrbenchError(f"invalid --n {n}: must be a positive integer")
    if out.suffix.lower() != ".png":
        raise HrbenchError(f"--out {out}: the grid is written as PNG (give a .png file name)")
    from hrbench.data.augment import AUGMENT_SETS, augment_sets

    if augment_set not in augment_sets():
        raise HrbenchError(f"unknown --augment-set {augment_set!r}: choose from {', '.join(augment_sets())}")
    if stage not in (1, 2):
        raise HrbenchError(f"invalid --stage {stage}: RTMPose's augmentation has stages 1 and 2")
    if stage != 1 and AUGMENT_SETS[augment_set][1] is AUGMENT_SETS[augment_set][2]:
        raise HrbenchError(f"--stage {stage}: the {augment_set} augmentation has one stage")
    if not augment and (augment_set != "msra" or stage != 1):
        raise HrbenchError("--augment-set / --stage choose the training augmentation: add --augment")
    check_output_file(out)  # before the work: not a FIFO / device / folder, and its folder writable
    hw = resolve_input(input_size, dataset)
    ds = build_dataset(dataset, root, split, hw, train=augment)
    chosen = AUGMENT_SETS[augment_set][stage]
    if augment and chosen is not None:  # as the trainer sets it per epoch
        ds.aug = chosen
    ds.reseed(seed)
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(ds), size=min(n, len(ds)), replace=False).tolist())
    scale = max(1, 256 // max(hw))
    tiles = []
    with progress_bar(make_console(stderr=True), "[bold]data show") as bar:
        task = bar.add_task("", total=len(picks))
        for i in picks:
            tiles.append(sample_tile(ds, i, scale))
            bar.advance(task)
    cols = int(np.ceil(np.sqrt(len(tiles) * hw[0] / hw[1])))
    write_png(out, grid(tiles, cols))
    print(f"wrote {out}: {len(tiles)} {dataset} {split} crops at {hw[0]}x{hw[1]}"
          f"{f' with the {augment_set} augmentation' + (f' (stage {stage})' if chosen else '') if augment else ''}"
          ", target heatmaps overlaid")
