"""The shared top-down dataset: person records -> augmented crops, the codec's targets and meta.

A *record* is one person instance: ``image_file``, ``image_id``, ``center`` (2,), ``scale`` (2,),
``joints`` (K, 3) as x, y, visibility 0/1 in original-image pixels, ``score`` (box score) and
``bbox_id`` (its index in the dataset). Loaders (:mod:`.coco`, :mod:`.mpii`) build the records.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from hrbench.codecs import Codec, MSRAHeatmap
from hrbench.data.transforms import AugmentConfig, to_tensor, topdown_crop
from hrbench.datasets import DatasetSpec
from hrbench.errors import DataError


def load_json(path: Path, what: str = "annotation file") -> Any:
    """Read a JSON file; missing file / malformed JSON -> one-line :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read {what} ({e})") from None


def is_number(value: Any, *, finite: bool = False) -> bool:
    """A JSON number: an int or float. Bools count, as Python arithmetic takes them, and so do NaN and
    ±inf; with ``finite`` neither does (only a finite int or float that is not a bool)."""
    if not isinstance(value, (int, float)):
        return False
    return not finite or (not isinstance(value, bool) and math.isfinite(value))


def check_numbers(value: Any, n: int | None, where: str, what: str) -> None:
    """``value`` must be a list of ``n`` numbers (``n`` None: at least 1); else one-line DataError
    ``"{where} must be {what}, got ..."`` (``where`` names the file, record and field)."""
    ok = isinstance(value, list) and (len(value) == n if n is not None else len(value) > 0)
    if not ok or not all(is_number(v) for v in value):
        shown = repr(value)
        raise DataError(f"{where} must be {what}, got {shown if len(shown) <= 60 else shown[:57] + '...'}")


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image as the reference does (``mmcv.imread(path, 'color', 'rgb')``: ``cv2.imread``
    with ``IMREAD_COLOR``, which applies the EXIF orientation, then BGR -> RGB): uint8 (H, W, 3).

    A missing file, or one OpenCV cannot decode, -> one-line :class:`DataError` naming it. Like the
    reference, a JPEG cut short mid-scan still decodes (libjpeg fills the rest grey); catch those
    before training with :func:`verify_images`."""
    path = str(path)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise _unreadable(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def check_image_file(path: str | Path) -> None:
    """Without decoding: ``path`` exists and OpenCV knows its format from the file's header, else the
    one-line :class:`DataError` of :func:`load_image`. A file that passes can still fail to decode."""
    path = str(path)
    if not os.path.isfile(path) or not cv2.haveImageReader(path):
        raise _unreadable(path)


def _unreadable(path: str) -> DataError:
    """The error for a file OpenCV could not read: missing, else not decodable."""
    if not os.path.isfile(path):
        return DataError(f"{path}: image file not found")
    return DataError(f"{path}: corrupt or unreadable image (OpenCV cannot decode it)")


def _decode_error(path: str) -> str | None:
    """Why ``path`` is not a complete, decodable image (None if it is). A strict decode with Pillow
    (JPEGs at 1/8 scale: every entropy-coded byte is still read, so truncation is caught)."""
    if not os.path.isfile(path):
        return "image file not found"
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"corrupt or unreadable image ({type(e).__name__}: {e})"
    return None


def verify_images(dataset: Any) -> None:
    """Check that every image of a split exists and decodes completely, before training starts.

    ``dataset``: a :class:`TopDownDataset` (or anything with ``records`` holding ``image_file``, or
    an iterable of image paths). Each distinct file is fully decoded once (Pillow; JPEGs at 1/8 scale);
    missing, unidentifiable, truncated and checksum-damaged files fail. Raises one :class:`DataError`
    naming the first bad file (in sorted order), the reason, and how many of the files are bad."""
    records = getattr(dataset, "records", None)
    files: Iterable = (r["image_file"] for r in records) if records is not None else dataset
    paths = sorted({str(f) for f in files})
    bad: list[tuple[str, str]] = []
    for f in paths:
        why = _decode_error(f)
        if why is not None:
            bad.append((f, why))
    if bad:
        source = getattr(dataset, "ann_file", None)
        of = f" referenced by {source}" if source is not None else ""
        raise DataError(f"{bad[0][0]}: {bad[0][1]}; {len(bad)} of {len(paths)} image files{of} are bad")


def check_images_exist(files, ann_file: Path) -> None:
    """Fail early, naming the first missing image referenced by ``ann_file``."""
    for f in files:
        if not os.path.isfile(f):
            raise DataError(f"{f}: image file not found (referenced by {ann_file})")


class TopDownDataset(Dataset):
    """Person crops for top-down training/evaluation (see the module docstring for records).

    A sample is a dict: ``image`` float32 3xHxW (ImageNet-normalised), one array per target key of
    ``codec`` (default MSRA heatmaps: ``target`` float32 K x H/4 x W/4, ``target_weight`` float32
    Kx1; the engine sets the model's codec), ``meta`` dict (image_id, image_file, center, scale,
    rotation, score, bbox_id, flipped, flip_pairs). Batch with :func:`collate`.
    """

    def __init__(self, records: list[dict], spec: DatasetSpec, input_hw: tuple[int, int], train: bool,
                 aug: AugmentConfig | None = None, source: str = "", codec: Codec | None = None) -> None:
        if not records:
            raise DataError(f"{source or spec.name}: empty split (no usable person instances)")
        self.records = records
        self.spec = spec
        self.name = spec.name
        self.num_keypoints = spec.num_keypoints
        self.flip_pairs = [list(p) for p in spec.flip_pairs]
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.train = bool(train)
        self.aug = aug or AugmentConfig()
        self.codec: Codec = codec if codec is not None else MSRAHeatmap()
        self.box_source = "gt"
        self._rng: np.random.Generator | None = None
        self._rng_pid = -1

    def __len__(self) -> int:
        return len(self.records)

    def _generator(self) -> np.random.Generator:
        """A per-process generator seeded from torch (differs per DataLoader worker, follows manual_seed)."""
        pid = os.getpid()
        if self._rng is None or self._rng_pid != pid:
            self._rng = np.random.default_rng(torch.initial_seed() % (2 ** 63))
            self._rng_pid = pid
        return self._rng

    def reseed(self, seed: int) -> None:
        """Make the augmentation of the following samples (in this process) a function of ``seed``."""
        self._rng = np.random.default_rng(int(seed) % (2 ** 63))
        self._rng_pid = os.getpid()

    def __getitem__(self, idx: int) -> dict:
        r = self.records[idx]
        image = load_image(r["image_file"])
        joints = r["joints"]
        crop = topdown_crop(image, joints[:, :2], joints[:, 2], r["center"], r["scale"], self.input_hw,
                            train=self.train, flip_pairs=self.spec.flip_pairs,
                            upper_ids=self.spec.upper_body_ids, aug=self.aug,
                            rng=self._generator() if self.train else None, affine=self.codec.affine)
        targets = self.codec.encode(crop.joints, crop.vis, self.input_hw)
        meta = sample_meta(r, crop, self.flip_pairs)
        return {"image": to_tensor(crop.image), **{k: torch.from_numpy(v) for k, v in targets.items()}, "meta": meta}


def collate(batch: list[dict]) -> dict:
    """Stack samples: tensors (the image and the codec's targets) -> batched tensors; meta -> dict of
    numpy arrays (numbers) / lists (strings); ``flip_pairs`` is the same for every sample and is kept once."""
    out: dict[str, Any] = {k: torch.stack([b[k] for b in batch]) for k in batch[0] if k != "meta"}
    out["meta"] = collate_meta(batch)
    return out


def collate_meta(batch: list[dict]) -> dict:
    """The samples' ``meta`` as one dict: numbers stacked into numpy arrays, strings as lists,
    ``flip_pairs`` (the same for every sample) kept once."""
    meta: dict[str, Any] = {}
    for key in batch[0]["meta"]:
        vals = [b["meta"][key] for b in batch]
        if key == "flip_pairs":
            meta[key] = vals[0]
        elif isinstance(vals[0], str):
            meta[key] = vals
        else:
            meta[key] = np.stack([np.asarray(v) for v in vals])
    return meta


def sample_meta(record: dict, crop, flip_pairs) -> dict:
    """The ``meta`` of one top-down sample: what decoding and evaluation need to map back."""
    return {
        "image_id": int(record["image_id"]),
        "image_file": str(record["image_file"]),
        "center": crop.center.astype(np.float32),
        "scale": crop.scale.astype(np.float32),
        "rotation": float(crop.rotation),
        "score": float(record["score"]),
        "bbox_id": int(record["bbox_id"]),
        "flipped": bool(crop.flipped),
        "flip_pairs": flip_pairs,
    }
