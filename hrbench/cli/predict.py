"""``hrbench predict``: keypoints of a checkpoint on images, folders or videos, drawn and in COCO results format."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hrbench.cli import options
from hrbench.cli.options import make_console, parse_input, parse_overrides, print_json, progress_bar
from hrbench.cli.root import app
from hrbench.errors import HrbenchError
from hrbench.fsutil import write_json_atomic
from hrbench.manifest import commit, refuse_foreign, staging


def _overlay_name(file: Path, used: set[str], ext: str) -> str:
    name = f"{file.stem}_pose{ext}"
    i = 1
    while name in used:
        name, i = f"{file.stem}_{i}_pose{ext}", i + 1
    used.add(name)
    return name


def _check_inputs(files: list[Path]) -> None:
    """Before any output is written: every image exists and has a format OpenCV reads (header only, the
    full decode happens once, when it is predicted), every video opens and yields a frame."""
    from hrbench.data.base import check_image_file
    from hrbench.evaluation.images import is_video, video_frames

    for f in files:
        if is_video(f):
            frames = video_frames(f)
            next(frames)
            frames.close()
        else:
            check_image_file(f)


def _run_video(lm, file: Path, boxes, pairs, flip: bool, tmp: Path, name: str, thr: float, bar,
               task) -> list[dict]:
    import cv2

    from hrbench.evaluation.files import predict_video
    from hrbench.reports.overlay import pose_overlay

    writer, results = None, []
    try:
        for i, frame, fps, res in predict_video(lm.model, file, boxes, lm.input_hw, pairs, flip=flip):
            results += res
            drawn = pose_overlay(frame, res, lm.dataset, thr, f"{lm.arch} frame {i}")
            if writer is None:  # sized as the overlay (small videos are drawn enlarged)
                writer = cv2.VideoWriter(str(tmp / name), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (drawn.shape[1], drawn.shape[0]))
                if not writer.isOpened():
                    raise HrbenchError(f"{name}: OpenCV cannot write an mp4v video here")
            writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            bar.update(task, description=f"{file.name} frame {i}")
    finally:
        if writer is not None:
            writer.release()
    bar.advance(task)
    return results


def _run_image(lm, file: Path, index: int, boxes, pairs, flip: bool, tmp: Path, name: str,
               thr: float) -> list[dict]:
    from hrbench.evaluation.files import predict_image_file
    from hrbench.evaluation.images import image_id_for
    from hrbench.reports.overlay import pose_overlay, write_png

    image, res = predict_image_file(lm.model, file, boxes(file, None), lm.input_hw, pairs, flip=flip,
                                    image_id=image_id_for(file, index))
    write_png(tmp / name, pose_overlay(image, res, lm.dataset, thr, f"{lm.arch} ({lm.dataset})"))
    return res


def _box_source(boxes_file: Path | None, box: str | None):
    from hrbench.evaluation.images import boxes_for, load_boxes, parse_box

    if boxes_file is not None and box is not None:
        raise HrbenchError("give --boxes FILE or --box x,y,w,h, not both")
    if box is not None:
        fixed = [(parse_box(box), 1.0)]
        return lambda f, frame: fixed
    if boxes_file is not None:
        entries = load_boxes(boxes_file)
        return lambda f, frame: boxes_for(entries, f, frame)
    return lambda f, frame: []


def _say_whole_images(results: list[dict], boxes_file: Path | None) -> None:
    """One line on stderr when ``--boxes`` had no entry for some inputs: their whole image was the box."""
    missing = sorted({r["file_name"] for r in results if r.get("box_source") == "whole image"})
    if boxes_file is not None and missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        print(f"hrbench: note: no box in {boxes_file} for {len(missing)} input(s) ({shown}): the whole image "
              'was used as one box with score 1.0 (box_source "whole image" in predictions.json)', file=sys.stderr)


@app.command("predict")
def predict_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias"),
    inputs: list[Path] = typer.Argument(..., help="image files, folders of images, or video files"),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="hrbench or official (mmpose) checkpoint"),
    boxes_file: Path = typer.Option(None, "--boxes", help="person boxes JSON [{file_name|image_id, bbox, score}]"),
    box: str = typer.Option(None, "--box", help="one person box x,y,w,h for every input"),
    input_size: str = options.input_option("the checkpoint's"),
    dataset: str = options.dataset_option(shown="the checkpoint's, else coco"),
    sets: list[str] = typer.Option(None, "--set", help="KEY=VALUE model hyper-parameter (default: the checkpoint's)"),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="flip test (average with the mirrored crop)"),
    out: Path = options.out_option(Path("predictions"), "folder: the overlays and predictions.json"),
    thr: float = options.probability_option(0.2, "--thr", "draw joints with confidence above this"),
    as_json: bool = options.json_option("the COCO-format results"),
) -> None:
    """Keypoints of ARCH's checkpoint per person box: overlay images (videos: an overlay video) and
    OUT/predictions.json in the COCO keypoint results format. No boxes: the whole image is one box."""
    from hrbench.datasets import get_dataset
    from hrbench.evaluation.images import collect_inputs, is_video
    from hrbench.factory import restore_model

    hw = parse_input(input_size) if input_size else None
    boxes = _box_source(boxes_file, box)
    files = collect_inputs(inputs)
    if out.exists() and not out.is_dir():
        raise HrbenchError(f"--out {out}: exists and is not a folder")
    lm = restore_model(arch, checkpoint, parse_overrides(sets) or None, dataset, hw)
    _check_inputs(files)
    pairs = [list(p) for p in get_dataset(lm.dataset).flip_pairs]
    refuse_foreign(out, ["predictions.json"])  # overlays' names are checked when they are moved in
    results, used = [], set()
    with staging(out) as tmp:  # built aside, moved in when complete; only hrbench's own files are replaced
        with progress_bar(make_console(stderr=True), "[bold]predict[/bold] {task.description}", disable=as_json) as bar:
            task = bar.add_task("", total=len(files))
            for i, f in enumerate(files):
                if is_video(f):
                    results += _run_video(lm, f, boxes, pairs, flip, tmp, _overlay_name(f, used, ".mp4"), thr, bar,
                                          task)
                    continue
                bar.update(task, description=f.name)
                results += _run_image(lm, f, i, boxes, pairs, flip, tmp, _overlay_name(f, used, ".png"), thr)
                bar.advance(task)
        write_json_atomic(tmp / "predictions.json", results, compact=True)
        notes = commit(tmp, out)
    for note in notes:
        print(note, file=sys.stderr)
    _say_whole_images(results, boxes_file)
    if as_json:
        return print_json(results)
    print(f"{lm.arch} ({lm.dataset}, {lm.input_hw[0]}x{lm.input_hw[1]}, flip {'on' if flip else 'off'}): "
                  f"{len(results)} persons in {len(files)} inputs -> {out}/ ({len(used)} overlays, predictions.json)")
