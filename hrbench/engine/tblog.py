"""TensorBoard event files of a training run (``<run>/tb/``, rank 0 only), what the official
Lite-HRNet / Dite-HRNet configs log with mmcv's ``TensorboardLoggerHook``, through
``torch.utils.tensorboard.SummaryWriter``.

Every value is logged at the global optimiser step (``iteration``), so training and validation curves
share one x axis:

==========================  ======================================================================
tag                         when, what
==========================  ======================================================================
``train/loss``              every log point: mean training loss of the steps since the last one
``train/lr``                every log point: the learning rate of its last step
``train/img_per_s``         every log point: images (all processes) per second of data wait + step
``train/data_wait``         every log point: share of that time spent waiting for the data loader
``val/loss``                every validation: heatmap loss on the val set
``val/<metric>``            every validation: :data:`VAL_METRICS` the evaluation returned
                            (COCO AP, AP50, AP75, AR; MPII PCKh, PCKh@0.1)
``val/crops``               every validation: a fixed grid of val crops, ground truth beside prediction
==========================  ======================================================================

A resumed run appends a new event file in the same folder whose ``purge_step`` is the step after its
checkpoint's: TensorBoard drops what a killed run logged after its last checkpoint (steps that are
trained again), and keeps everything up to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from hrbench.data.draw import draw_skeleton, grid, put_text, skeleton
from hrbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD, apply_affine, crop_affine, crop_matrix
from hrbench.models.pose import codec_of
from hrbench.precision import autocast

#: ``val/<key>`` scalars: the headline numbers of each dataset's evaluation, where present.
VAL_METRICS = ("AP", "AP50", "AP75", "AR", "PCKh", "Mean@0.1")
#: Val crops in the image grid (evenly spread over the split, the same every validation).
GRID_SAMPLES = 8


class TensorBoardLog:
    """The event writer of one run (``<run>/tb``); ``purge_step``: the first step a resumed run trains."""

    def __init__(self, folder: str | Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.writer = SummaryWriter(str(self.folder), purge_step=purge_step)

    def train_point(self, step: int, loss: float, lr: float, images: int, data_s: float, step_s: float) -> None:
        """One log point: ``images`` (all processes) trained in ``data_s`` s waiting + ``step_s`` s stepping."""
        total = data_s + step_s
        w = self.writer
        w.add_scalar("train/loss", loss, step)
        w.add_scalar("train/lr", lr, step)
        if total > 0:
            w.add_scalar("train/img_per_s", images / total, step)
            w.add_scalar("train/data_wait", data_s / total, step)

    def validation(self, step: int, metrics: dict[str, Any], model: nn.Module, val_set, device: torch.device,
                   amp: str | None = None) -> None:
        """The val scalars of ``metrics`` and the crop grid of ``model`` on ``val_set``; flushed."""
        self.writer.add_scalar("val/loss", metrics["val_loss"], step)
        for key in VAL_METRICS:
            if isinstance(metrics.get(key), (int, float)):
                self.writer.add_scalar(f"val/{key}", metrics[key], step)
        image = val_grid(model, val_set, device, amp)
        self.writer.add_image("val/crops", image, step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def grid_indices(n: int, k: int = GRID_SAMPLES) -> list[int]:
    """``min(k, n)`` sample indices spread evenly over ``0 .. n-1`` (first and last included)."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(k, n))})


def crop_rgb(image: torch.Tensor, scale: int) -> np.ndarray:
    """A normalised (3, H, W) crop back to RGB uint8, enlarged ``scale`` times (nearest)."""
    img = image.permute(1, 2, 0).float().cpu().numpy() * IMAGENET_STD + IMAGENET_MEAN
    img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)


@torch.no_grad()
def predicted_joints(model: nn.Module, images: torch.Tensor, device: torch.device,
                     amp: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Joints (N, K, 2) in crop pixels and their confidences (N, K) of one forward (no flip), decoded
    by the model's codec (heatmaps: argmax with the quarter offset) and scaled from its frame to the crop."""
    was_training = model.training
    model.eval()
    with autocast(device, amp):
        output = model(images.to(device))
    model.train(was_training)
    codec = codec_of(model)
    decoded = codec.decode(output)
    h, w = images.shape[-2:]
    short = crop_affine(codec.affine).span_short  # the crop pixels the frame spans (UDP: w - 1)
    ratio = np.array([(w - short) / decoded.frame_wh[0], (h - short) / decoded.frame_wh[1]])
    return decoded.coords * ratio, decoded.scores[..., 0]


def val_grid(model: nn.Module, val_set, device: torch.device, amp: str | None = None) -> np.ndarray:
    """RGB grid of :func:`grid_indices` val crops as the model sees them: per sample the ground-truth
    joints (side colours, ``gt``) beside the prediction (confidence colours, ``pred``)."""
    picks = grid_indices(len(val_set))
    samples = [val_set[i] for i in picks]
    pred, conf = predicted_joints(model, torch.stack([s["image"] for s in samples]), device, amp)
    names, limbs = skeleton(val_set.name)
    h, w = val_set.input_hw
    scale = max(1, 192 // max(h, w))
    tiles = []
    for j, (i, s) in enumerate(zip(picks, samples, strict=True)):
        record, meta = val_set.records[i], s["meta"]
        m = crop_matrix(val_set.codec.affine, meta["center"], meta["scale"], meta["rotation"], (w, h))
        gt = apply_affine(record["joints"][:, :2], m)
        for label, points, shown, colours in (("gt", gt, record["joints"][:, 2] > 0, None),
                                              ("pred", pred[j], conf[j] > 0, conf[j])):
            tile = crop_rgb(s["image"], scale)
            draw_skeleton(tile, (points + 0.5) * scale - 0.5, shown, names, limbs, confidence=colours,
                          radius=max(2, scale), thickness=max(1, scale // 2))
            put_text(tile, f"#{i} {label}", (3, 12))
            tiles.append(tile)
    return grid(tiles, cols=4)
