"""The shared top-down dataset: person records -> augmented crops, the codec's targets and meta.

A *record* is one person instance: ``image_file``, ``image_id``, ``center`` (2,), ``scale`` (2,),
``joints`` (K, 3) as x, y, visibility 0/1 in original-image pixels, ``score`` (box score) and
``bbox_id`` (its index in the dataset). Loaders (:mod:`.coco`, :mod:`.mpii`) build the records.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
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
from hrbench.validate import check_seed

#: The most pixels an image may have (2^28 = 268 M, e.g. 16384 x 16384, 0.8 GB decoded as RGB), read from
#: its header before it is decoded: a "decompression bomb" (a 30000 x 30000 PNG is 0.9 MB on disk, 2.7 GB
#: decoded) is refused. COCO images are at most 640 x 640 (0.4 M pixels), MPII 1920 x 1080 (2.1 M).
MAX_IMAGE_PIXELS = 2 ** 28


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
    """``value`` must be a list of ``n`` finite numbers (``n`` None: at least 1); else one-line DataError
    ``"{where} must be {what}, got ..."`` (``where`` names the file, record and field). NaN and ±inf
    (which Python's JSON reader accepts) are refused: they would train to "diverged" or crash a crop."""
    ok = isinstance(value, list) and (len(value) == n if n is not None else len(value) > 0)
    if not ok or not all(is_number(v) for v in value):
        shown = repr(value)
        raise DataError(f"{where} must be {what}, got {shown if len(shown) <= 60 else shown[:57] + '...'}")
    bad = next((k for k, v in enumerate(value) if not isinstance(v, bool) and not math.isfinite(v)), None)
    if bad is not None:
        raise DataError(f"{where}[{bad}] must be a finite number, got {value[bad]}")


def image_header_size(path: str) -> tuple[int, int] | None:
    """(width, height) read from the image file's header, without decoding it (Pillow's lazy open);
    None when Pillow does not know the format (OpenCV may still: it is then decoded unchecked)."""
    try:
        with _pillow_unlimited(), Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


@contextlib.contextmanager
def _pillow_unlimited() -> Iterator[None]:
    """Pillow without its own decompression-bomb check (a warning above 89 M pixels, an error above
    179 M, raised before the size is known): hrbench's :data:`MAX_IMAGE_PIXELS` applies instead."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def check_image_header(path: str, expected: tuple[float, float] | None = None, source: str = "") -> None:
    """Cheap, before decoding: ``path`` exists, is not empty, OpenCV knows its format, it has at most
    :data:`MAX_IMAGE_PIXELS` pixels and (``expected``: the annotation's width, height, ``source`` the
    annotation file) the size the annotation says. One-line :class:`DataError` naming the file."""
    if not os.path.isfile(path):
        raise _unreadable(path)
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: empty image file (0 bytes)")
    size = image_header_size(path)
    if size is None and not cv2.haveImageReader(path):
        raise _unreadable(path)
    if size is not None:
        check_pixel_size(path, size, expected, source)


def check_pixel_size(path: str, size: tuple[int, int], expected: tuple[float, float] | None = None,
                     source: str = "") -> None:
    """``size`` (width, height) of the image ``path`` is within :data:`MAX_IMAGE_PIXELS` and equals the
    annotation's ``expected`` (when given); else one-line :class:`DataError`."""
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: {w}x{h} image ({w * h:,} pixels) exceeds the limit of {MAX_IMAGE_PIXELS:,} "
                        "pixels (2^28; a decompression bomb?)")
    if expected is not None and (w, h) != (expected[0], expected[1]):
        raise DataError(f"{path}: the image is {w}x{h} but {source or 'its annotation'} says width "
                        f"{expected[0]}, height {expected[1]}")


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image as the reference does (``mmcv.imread(path, 'color', 'rgb')``: ``cv2.imread``
    with ``IMREAD_COLOR``, which applies the EXIF orientation, then BGR -> RGB): uint8 (H, W, 3).

    A missing or empty file, one OpenCV cannot decode, or one with more than :data:`MAX_IMAGE_PIXELS`
    pixels (read from the header first) -> one-line :class:`DataError` naming it. Like the
    reference, a JPEG cut short mid-scan still decodes (libjpeg fills the rest grey); catch those
    before training with :func:`verify_images`."""
    path = str(path)
    check_image_header(path)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise _unreadable(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def check_image_file(path: str | Path) -> None:
    """Without decoding: :func:`check_image_header` (exists, not empty, a format OpenCV knows, within
    the pixel limit). A file that passes can still fail to decode."""
    check_image_header(str(path))


def _unreadable(path: str) -> DataError:
    """The error for a file OpenCV could not read: missing, else not decodable."""
    if not os.path.isfile(path):
        return DataError(f"{path}: image file not found")
    return DataError(f"{path}: corrupt or unreadable image (OpenCV cannot decode it)")


def _decode_error(path: str) -> str | None:
    """Why ``path`` is not a complete, decodable image (None if it is). A strict decode with Pillow
    (JPEGs at 1/8 scale: every entropy-coded byte is still read, so truncation is caught)."""
    try:
        check_image_header(path)
    except DataError as e:
        return str(e).removeprefix(f"{path}: ")
    try:
        with _pillow_unlimited(), Image.open(path) as im:
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


def check_images_exist(records: list[dict], ann_file: Path) -> None:
    """Fail early (before training or evaluating), naming the first bad image referenced by ``ann_file``:
    missing, empty, a format OpenCV does not know, over the pixel limit, or (records with ``width`` and
    ``height``: the annotation's) another size than the annotation says. Headers only, each file once."""
    seen: set[str] = set()
    for r in sorted(records, key=lambda r: r["image_file"]):
        f = r["image_file"]
        if f in seen:
            continue
        seen.add(f)
        if not os.path.isfile(f):
            raise DataError(f"{f}: image file not found (referenced by {ann_file})")
        check_image_header(f, _expected_size(r), str(ann_file))


def _expected_size(record: dict) -> tuple[float, float] | None:
    """The image size a record's annotation gives (COCO: width, height), else None."""
    return (record["width"], record["height"]) if "width" in record else None


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
        self._rng = np.random.default_rng(check_seed(seed) % (2 ** 63))
        self._rng_pid = os.getpid()

    def __getitem__(self, idx: int) -> dict:
        r = self.records[idx]
        image = load_image(r["image_file"])
        if "width" in r:  # the decoded size, which the annotation's box clipping assumed
            check_pixel_size(r["image_file"], (image.shape[1], image.shape[0]), _expected_size(r),
                             getattr(self, "ann_file", ""))
        joints = r["joints"]
        crop = topdown_crop(image, joints[:, :2], joints[:, 2], r["center"], r["scale"], self.input_hw,
                            train=self.train, flip_pairs=self.spec.flip_pairs,
                            upper_ids=self.spec.upper_body_ids, aug=self.aug,
                            rng=self._generator() if self.train else None, affine=self.codec.affine,
                            box=r.get("bbox"))
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
