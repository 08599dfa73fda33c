"""Pose estimation on arbitrary images and person boxes (``hrbench predict``).

Every box goes through the evaluation path unchanged: box -> centre/scale
(:func:`~hrbench.data.transforms.box_to_center_scale`), the top-down crop without augmentation
(:func:`~hrbench.data.transforms.topdown_crop`), the sample meta of the datasets, then
:func:`~hrbench.evaluation.inference.predict_batch` (flip test, decoding back to image pixels).
So the keypoints equal those of ``hrbench eval`` for the same image and box.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from hrbench.data.base import check_pixel_size, collate_meta, is_number, load_json, sample_meta
from hrbench.data.transforms import box_to_center_scale, to_tensor, topdown_crop
from hrbench.errors import DataError, HrbenchError
from hrbench.evaluation.coco_eval import rescore
from hrbench.evaluation.inference import predict_batch
from hrbench.models.pose import codec_of
from hrbench.validate import check_box

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

Box = tuple[list[float], float]  # ([x, y, w, h], score)


def collect_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Image and video files from files and folders (a folder's images/videos, sorted by name)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS)
            if not found:
                raise DataError(f"{p}: no image or video files in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return files


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def video_frames(path: Path) -> Iterator[tuple[int, np.ndarray, float]]:
    """(frame index, RGB uint8 frame, fps) of a video read with OpenCV; DataError if unreadable or its
    frames exceed the pixel limit of :func:`~hrbench.data.base.load_image`. FFmpeg's and OpenCV's own
    log lines ("moov atom not found") are silenced: hrbench says what went wrong in one line."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        cap = cv2.VideoCapture(str(path))
    finally:
        cv2.utils.logging.setLogLevel(level)
    try:
        size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if cap.isOpened():
            check_pixel_size(str(path), size)
        ok, frame = cap.read()
        if not cap.isOpened() or not ok:
            raise DataError(f"{path}: OpenCV cannot read this video")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        i = 0
        while ok:
            yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), fps
            i += 1
            ok, frame = cap.read()
    finally:
        cap.release()


def parse_box(text: str) -> list[float]:
    """``"x,y,w,h"`` -> [x, y, w, h] with w, h > 0 (:func:`hrbench.validate.check_box`)."""
    try:
        return check_box([float(v) for v in text.split(",")], "--box")
    except (ValueError, HrbenchError):
        raise DataError(f"malformed --box {text!r}: expected x,y,w,h with w, h > 0, e.g. 10,20,80,160") from None


def load_boxes(path: str | Path) -> list[dict]:
    """A person-box file: a JSON list of ``{bbox: [x, y, w, h], score?, category_id?, frame?}`` entries that
    name their image by ``file_name`` (or ``image``) or by ``image_id`` (int: the number in the file
    name, as COCO names files; str: the file name or its stem). Category ids other than 1 are skipped.
    Wrong schema -> one-line DataError naming the entry and field."""
    data = load_json(Path(path), "boxes file")
    if not isinstance(data, list):
        raise DataError(f"{path}: wrong schema (expected a list of {{file_name|image_id, bbox, score}} objects)")
    out = []
    for i, d in enumerate(data):
        if not isinstance(d, dict):
            raise DataError(f"{path}: wrong schema (entry {i} is not an object)")
        key = d.get("file_name", d.get("image", d.get("image_id")))
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise DataError(f"{path}: wrong schema (entry {i} needs file_name or image_id)")
        try:
            box = check_box(d.get("bbox"), f"{path}: entry {i} bbox")
        except HrbenchError as e:
            raise DataError(str(e)) from None
        score = d.get("score", 1.0)
        if not is_number(score, finite=True):
            raise DataError(f"{path}: wrong schema (entry {i} score must be a number)")
        frame = d.get("frame")
        if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
            raise DataError(f"{path}: wrong schema (entry {i} frame must be a non-negative integer)")
        if d.get("category_id", 1) != 1:
            continue
        out.append({"key": key, "bbox": box, "score": float(score), "frame": frame})
    return out


def boxes_for(entries: list[dict], file: Path, frame: int | None = None) -> list[Box]:
    """The entries of :func:`load_boxes` that name ``file`` (and ``frame`` for a video)."""
    stem = file.stem
    number = int(stem) if stem.isdigit() else None

    def match(key) -> bool:
        if isinstance(key, int):
            return key == number
        return key in (file.name, stem, str(file))

    return [(e["bbox"], e["score"]) for e in entries
            if match(e["key"]) and (e["frame"] is None or frame is None or e["frame"] == frame)]


def image_size(image) -> tuple[int, int]:
    """(width, height) of a pipeline image."""
    h, w = np.asarray(image).shape[:2]
    return int(w), int(h)


@torch.no_grad()
def predict_image(model: torch.nn.Module, image, boxes: list[Box], input_hw: tuple[int, int], flip_pairs,
                  *, flip: bool = True, image_id: int = 0, image_file: str = "",
                  post_process: str = "default") -> dict:
    """Predictions (the :mod:`~hrbench.evaluation.predictions` container) for ``boxes`` in ``image``;
    no boxes -> the whole image is one box with score 1.0 (``box_source`` "whole image", else "box")."""
    source = "box" if boxes else "whole image"
    if not boxes:
        w, h = image_size(image)
        boxes = [([0.0, 0.0, float(w), float(h)], 1.0)]
    samples, tensors = [], []
    affine = codec_of(model).affine
    for i, (bbox, score) in enumerate(boxes):
        center, scale = box_to_center_scale(*bbox, aspect_ratio=input_hw[1] / input_hw[0])
        # no joints: only the crop image and its parameters are used
        crop = topdown_crop(image, np.zeros((0, 2), np.float32), np.zeros(0, np.float32), center, scale, input_hw,
                            train=False, flip_pairs=flip_pairs, affine=affine)
        record = {"image_id": image_id, "image_file": image_file, "score": score, "bbox_id": i}
        samples.append({"meta": sample_meta(record, crop, flip_pairs)})
        tensors.append(to_tensor(crop.image))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    images = torch.stack(tensors).to(device)
    pred = predict_batch(model, images, collate_meta(samples), flip_pairs, flip_test=flip,
                         post_process=post_process)
    pred["bbox"] = np.asarray([b for b, _ in boxes], dtype=np.float32)
    pred["box_source"] = source
    return pred


def results_of(pred: dict, file_name: str, frame: int | None = None) -> list[dict]:
    """COCO keypoint results (``[{image_id, category_id, keypoints, score}]``, as the evaluation's
    results file) of one image's predictions, one per box (no NMS), with
    ``bbox``, ``box_score``, ``box_source`` ("box" or "whole image": no box was given for it) and
    ``file_name`` (and ``frame``) added."""
    out = []
    for i in range(len(pred["keypoints"])):
        kpts = pred["keypoints"][i].astype(np.float64)
        r = {"image_id": int(pred["image_id"][i]), "category_id": 1,
             "keypoints": kpts.ravel().tolist(),
             "score": rescore(kpts, float(pred["score"][i])),
             "bbox": [round(float(v), 2) for v in pred["bbox"][i]], "box_score": float(pred["score"][i]),
             "box_source": pred.get("box_source", "box"), "file_name": file_name}
        if frame is not None:
            r["frame"] = frame
        out.append(r)
    return out


def image_id_for(file: Path, index: int) -> int:
    """The COCO image id of an input: the number in its name (``000000000139.jpg`` -> 139), else its index."""
    return int(file.stem) if file.stem.isdigit() else index
