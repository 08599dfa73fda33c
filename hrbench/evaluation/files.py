"""Keypoints on image and video files, from Python (the loops behind ``hrbench predict``).

Each image, and each frame of a video, goes through :func:`~hrbench.evaluation.images.predict_image`
(the evaluation path: crop, flip test, decoding) and comes back as COCO keypoint results
(:func:`~hrbench.evaluation.images.results_of`). ``boxes`` says which person boxes to use: a
callable ``(file, frame) -> [([x, y, w, h], score), ...]`` (``frame`` None for an image), e.g. from
:func:`~hrbench.evaluation.images.load_boxes` + :func:`~hrbench.evaluation.images.boxes_for`; no
boxes -> the whole image is one box. Drawing stays with the caller (``hrbench.reports.overlay``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from hrbench.data.base import load_image
from hrbench.evaluation.images import (
    Box,
    collect_inputs,
    image_id_for,
    is_video,
    predict_image,
    results_of,
    video_frames,
)

#: Person boxes of an input: ``(file, frame index or None) -> [([x, y, w, h], score), ...]``.
BoxSource = Callable[[Path, "int | None"], list[Box]]


def no_boxes(file: Path, frame: int | None) -> list[Box]:
    """The default box source: none, so each image (frame) is one box."""
    return []


def predict_image_file(model: torch.nn.Module, file: Path, boxes: list[Box], input_hw: tuple[int, int], flip_pairs,
                       *, flip: bool = True, image_id: int = 0) -> tuple[np.ndarray, list[dict]]:
    """The decoded RGB image of ``file`` and the COCO results of ``boxes`` in it (one per box)."""
    image = load_image(file)
    pred = predict_image(model, image, boxes, input_hw, flip_pairs, flip=flip, image_id=image_id,
                         image_file=str(file))
    return image, results_of(pred, file.name)


def predict_video(model: torch.nn.Module, file: Path, boxes: BoxSource, input_hw: tuple[int, int], flip_pairs,
                  *, flip: bool = True) -> Iterator[tuple[int, np.ndarray, float, list[dict]]]:
    """Per frame of the video ``file``: (frame index, RGB frame, fps, COCO results with ``frame``);
    the frame index is the results' ``image_id``."""
    for i, frame, fps in video_frames(file):
        pred = predict_image(model, frame, boxes(file, i), input_hw, flip_pairs, flip=flip, image_id=i,
                             image_file=str(file))
        yield i, frame, fps, results_of(pred, file.name, frame=i)


def predict_files(model: torch.nn.Module, paths: Sequence[str | Path], input_hw: tuple[int, int], flip_pairs, *,
                  boxes: BoxSource = no_boxes, flip: bool = True) -> list[dict]:
    """COCO keypoint results of every image and video frame of ``paths`` (files, folders), in order:
    what ``hrbench predict`` writes to ``predictions.json``. An image's ``image_id`` is the number in
    its name, else its position among the inputs."""
    results: list[dict] = []
    for index, file in enumerate(collect_inputs(paths)):
        if is_video(file):
            for *_, res in predict_video(model, file, boxes, input_hw, flip_pairs, flip=flip):
                results += res
        else:
            results += predict_image_file(model, file, boxes(file, None), input_hw, flip_pairs, flip=flip,
                                          image_id=image_id_for(file, index))[1]
    return results
