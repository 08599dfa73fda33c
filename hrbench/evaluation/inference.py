"""Run a pose model over a top-down dataset: batches -> head outputs (optionally flip-tested) ->
keypoints decoded by the model's codec (:func:`~hrbench.models.pose.codec_of`) in image pixels,
gathered in the predictions container of :mod:`hrbench.evaluation.predictions`. CPU or CUDA,
optional mixed precision."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from hrbench.data.base import collate
from hrbench.data.transforms import PIXEL_STD
from hrbench.errors import DataError, one_line
from hrbench.evaluation.decode import decode_keypoints
from hrbench.evaluation.predictions import FIELDS, empty_predictions
from hrbench.models.pose import codec_of
from hrbench.precision import autocast


@torch.no_grad()
def predict_batch(model: torch.nn.Module, images: torch.Tensor, meta: dict, flip_pairs, *,
                  flip_test: bool = False, post_process: str = "default", amp: str | None = None) -> dict:
    """Predictions for one collated batch (``images`` already on the model's device); ``amp``:
    ``bf16``/``fp16`` autocast (:mod:`hrbench.precision`), None for fp32. The flip test and
    ``post_process`` are the model's codec's."""
    device = images.device
    codec = codec_of(model)
    with autocast(device, amp):
        out = model(images)
        if flip_test:
            out = codec.merge_flip(out, model(images.flip(3)), flip_pairs)
    centers, scales = np.asarray(meta["center"]), np.asarray(meta["scale"])
    xy, conf = decode_keypoints(codec, out, centers, scales, post_process=post_process,
                                rotations=np.asarray(meta.get("rotation", np.zeros(len(images)))))
    return {"keypoints": np.concatenate([xy, conf], axis=2).astype(np.float32),
            "center": centers.astype(np.float32), "scale": scales.astype(np.float32),
            "area": np.prod(scales * PIXEL_STD, axis=1).astype(np.float32),
            "score": np.asarray(meta["score"], dtype=np.float32),
            "image_id": np.asarray(meta["image_id"], dtype=np.int64),
            "bbox_id": np.asarray(meta["bbox_id"], dtype=np.int64)}


def predict(model: torch.nn.Module, dataset, *, batch_size: int = 32, flip_test: bool = False,
            device: str | torch.device | None = None, amp: str | None = None, num_workers: int = 0,
            post_process: str = "default", sampler: Sampler | None = None,
            progress=None) -> dict:
    """Predictions (see :mod:`hrbench.evaluation.predictions`) of ``model`` on every sample of
    ``dataset`` (or those of ``sampler``, e.g. a DistributedSampler; merge ranks with
    :func:`~hrbench.evaluation.predictions.merge_predictions`). The model is run in eval mode and
    its previous mode restored. ``progress``: optional callable receiving the batch size after each batch.
    """
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    device = torch.device(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=sampler, num_workers=num_workers,
                        collate_fn=collate, pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    parts = []
    try:
        for batch in loader:
            images = batch["image"].to(device, non_blocking=True)
            parts.append(predict_batch(model, images, batch["meta"], dataset.flip_pairs, flip_test=flip_test,
                                       post_process=post_process, amp=amp))
            if progress is not None:
                progress(len(images))
    except DataError as e:
        raise DataError(one_line(e)) from None
    finally:
        model.train(was_training)
    if not parts:
        return empty_predictions(dataset.num_keypoints)
    return {k: np.concatenate([p[k] for p in parts]).astype(t) for k, t in FIELDS.items()}
