"""COCO person keypoints (17 joints; any spec in COCO's annotation style), top-down, from ground-truth
boxes or a detection file (the builder registered as ``"coco"``).

Layout under ``root`` (``hrbench data synth --dataset coco`` writes exactly this)::

    annotations/person_keypoints_{split}.json   # COCO keypoint annotation format
    images/{split}/<file_name>                  # file_name as in the json "images" entries
    person_detection_results/detections_{split}.json  # optional: [{image_id, category_id, bbox, score}]

The official release also loads: ``split="val2017"`` (or ``"val"`` when only the 2017 files exist)
with ``annotations/person_keypoints_val2017.json`` and images in ``images/val2017/`` or ``val2017/``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from hrbench.data.base import (
    TopDownDataset,
    check_images_exist,
    check_numbers,
    is_number,
    load_json,
)
from hrbench.data.transforms import AugmentConfig, box_to_center_scale, sanitize_box
from hrbench.datasets import DatasetSpec, register_builder
from hrbench.datasets.coco import COCO_SPEC
from hrbench.errors import DataError, HrbenchError
from hrbench.validate import check_box, check_probability

DET_DIR = "person_detection_results"
#: The COCO category id of a person: the only category whose annotations are loaded (the results say so).
PERSON_ID = 1
log = logging.getLogger(__name__)


def _candidates(root: Path, split: str) -> list[tuple[Path, list[Path]]]:
    """(annotation file, image dirs) candidates: the hrbench layout first, then the official 2017 names."""
    names = [split] + ([f"{split}2017"] if not split.endswith("2017") else [])
    return [(root / "annotations" / f"person_keypoints_{n}.json", [root / "images" / n, root / n]) for n in names]


def resolve_layout(root: str | Path, split: str) -> tuple[Path, Path]:
    """Annotation file and image directory of ``split`` under ``root``; DataError if absent."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    cands = _candidates(root, split)
    for ann, dirs in cands:
        if ann.is_file():
            img_dir = next((d for d in dirs if d.is_dir()), dirs[0])
            return ann, img_dir
    raise DataError(f"{cands[0][0]}: annotation file not found")


def validate_coco(data, path: Path, num_keypoints: int = 17) -> None:
    """Schema check of a COCO keypoint annotation file (one-line DataError naming the problem)."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: wrong schema (top level must be an object with images/annotations/categories)")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DataError(f"{path}: wrong schema (missing {key!r} key)")
        if not isinstance(data[key], list):
            raise DataError(f"{path}: wrong schema ({key!r} must be a list)")
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not {"id", "file_name", "width", "height"} <= im.keys():
            raise DataError(f"{path}: wrong schema (images[{i}] needs id, file_name, width, height)")
        if not is_number(im["id"]):
            raise DataError(f"{path}: images[{i}].id must be a number, got {im['id']!r:.40}")
        if not isinstance(im["file_name"], str):
            raise DataError(f"{path}: images[{i}] (id {im['id']}).file_name must be a string, "
                            f"got {im['file_name']!r:.40}")
    ids = _unique_ids(data["images"], path, "images")
    _unique_ids(data["annotations"], path, "annotations")
    need = {"id", "image_id", "bbox", "keypoints"}
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or not need <= a.keys():
            missing = sorted(need - (a.keys() if isinstance(a, dict) else set()))
            raise DataError(f"{path}: wrong schema (annotations[{i}] lacks {', '.join(missing)})")
        for key in ("id", "image_id"):
            if not is_number(a[key]):
                raise DataError(f"{path}: annotations[{i}].{key} must be a number, got {a[key]!r:.40}")
        if a["image_id"] not in ids:
            raise DataError(f"{path}: annotations[{i}] refers to unknown image_id {a['image_id']}")
        where = f"{path}: annotations[{i}] (id {a['id']})"
        if "category_id" in a and not is_number(a["category_id"]):
            raise DataError(f"{where}.category_id must be a number, got {a['category_id']!r:.40}")
        check_numbers(a["bbox"], 4, f"{where}.bbox", "[x, y, w, h] (4 numbers)")
        check_numbers(a["keypoints"], 3 * num_keypoints, f"{where}.keypoints", f"{3 * num_keypoints} numbers")
        for key in ("area", "iscrowd", "num_keypoints"):
            if key in a and not is_number(a[key]):
                raise DataError(f"{where}.{key} must be a number, got {a[key]!r:.40}")


def _unique_ids(entries: list, path: Path, key: str) -> set:
    """The ``id`` values of ``data[key]``; a repeated one -> DataError naming both entries (pycocotools
    would keep the last silently, and the other's persons would be scored against the wrong image)."""
    first: dict = {}
    for i, e in enumerate(entries):
        if isinstance(e, dict) and "id" in e and is_number(e["id"]):
            j = first.setdefault(e["id"], i)
            if j != i:
                raise DataError(f"{path}: {key}[{i}].id {e['id']} repeats {key}[{j}].id (ids must be unique)")
    return set(first)


def check_image_size(image: dict, path: Path) -> tuple[float, float]:
    """The image's (width, height), which the box clipping needs; anything but positive finite numbers
    -> DataError. (The decoded image is checked against them when it is read.)"""
    for key in ("width", "height"):
        if not is_number(image[key], finite=True) or image[key] <= 0:
            raise DataError(f"{path}: images entry id {image['id']}: {key} must be a number > 0, "
                            f"got {image[key]!r:.40}")
    return image["width"], image["height"]


def person_annotations(data: dict, path: Path) -> dict:
    """``data`` with only the person annotations (``category_id`` 1, or none given) and the person
    category: what is loaded and what COCOeval scores. Like the reference (whose person-keypoint files
    hold no other category), other categories are not loaded; hrbench says how many it skipped.
    No person category in ``categories`` -> DataError."""
    cats = [c for c in data["categories"] if isinstance(c, dict) and c.get("id") == PERSON_ID]
    if not cats:
        raise DataError(f"{path}: no person category (id {PERSON_ID}) in 'categories': hrbench scores COCO "
                        "person keypoints only")
    persons = [a for a in data["annotations"] if a.get("category_id", PERSON_ID) == PERSON_ID]
    skipped = len(data["annotations"]) - len(persons)
    if skipped:
        others = sorted({a["category_id"] for a in data["annotations"] if a.get("category_id", PERSON_ID) != PERSON_ID})
        log.warning(f"hrbench: note: {path}: skipped {skipped} annotation(s) of category_id "
                    f"{', '.join(map(str, others))} (not person, id {PERSON_ID}): only persons are loaded and scored")
    return {**data, "annotations": persons, "categories": cats}


def make_coco_api(data: dict):
    """A ``pycocotools.coco.COCO`` built from an already loaded dict (quietly)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_detections(path: Path, image_ids: set, score_thr: float) -> list[dict]:
    """Person detections (``COCO_val2017_detections_AP_H_56_person.json`` format) with score >= thr.

    Wrong-typed fields (string bbox or score, ...) -> one-line :class:`DataError` naming the detection
    index and field (the reference fails there with a TypeError). A box goes through the one box
    validator (:func:`hrbench.validate.check_box`): non-finite numbers and negative sizes are refused
    (the reference would crop a mirrored, meaningless region); zero-size boxes are kept, as the
    reference's ``_load_coco_person_detection_results`` keeps them: a zero-size box gives scale 0,
    the crop is filled with the image's top-left pixel and every keypoint decodes to the box corner."""
    check_probability(score_thr, "--det-thr")
    dets = load_json(path, "detection file")
    if not isinstance(dets, list):
        raise DataError(f"{path}: wrong schema (detections must be a list of {{image_id, category_id, bbox, score}})")
    out = []
    for i, d in enumerate(dets):
        if not isinstance(d, dict) or not {"image_id", "bbox", "score"} <= d.keys():
            raise DataError(f"{path}: wrong schema (detection {i} needs image_id, bbox, score)")
        if not is_number(d.get("category_id", 1)):
            raise DataError(f"{path}: detection {i}: category_id must be a number, got {d['category_id']!r:.40}")
        if d.get("category_id", 1) != 1:
            continue
        if not is_number(d["score"], finite=True):
            raise DataError(f"{path}: detection {i}: score must be a number (finite), got {d['score']!r:.40}")
        if d["score"] < score_thr:
            continue
        if not is_number(d["image_id"]) or d["image_id"] not in image_ids:
            raise DataError(f"{path}: detection {i} refers to image_id {d['image_id']!r} absent from the annotations")
        bbox = d["bbox"]
        try:
            check_box(bbox[:4] if isinstance(bbox, list) else bbox, f"{path}: detection {i}.bbox", empty_ok=True)
        except HrbenchError as e:
            raise DataError(str(e)) from None
        out.append(d)
    return out


class CocoPoseDataset(TopDownDataset):
    """COCO keypoints, one sample per person box (GT boxes, or detections when ``det_file`` is given).

    GT boxes: crowd annotations and instances without labelled keypoints are skipped and boxes are
    clipped to the image (the reference loader's rules); for training, 30 % of the box centres are
    shifted once at load time (up to ±20 % of the box, fixed seed). Detections: category 1 with
    ``score >= det_score_thr``; joints are unknown (zero weights).
    """

    def __init__(self, root: str | Path, split: str = "val", input_hw=(256, 192), train: bool = False,
                 det_file: str | Path | None = None, det_score_thr: float = 0.0,
                 aug: AugmentConfig | None = None, check_files: bool = True,
                 spec: DatasetSpec = COCO_SPEC) -> None:
        self.root = Path(root)
        self.split = split
        self.ann_file, self.image_dir = resolve_layout(self.root, split)
        data = load_json(self.ann_file)
        validate_coco(data, self.ann_file, spec.num_keypoints)
        data = person_annotations(data, self.ann_file)
        self.coco = make_coco_api(data)
        aspect = input_hw[1] / input_hw[0]
        images = {im["id"]: im for im in data["images"]}
        if det_file is None:
            jitter = np.random.default_rng(len(data["annotations"])) if train else None
            records = self._gt_records(data, images, aspect, spec.num_keypoints, jitter)
        else:
            det_path = Path(det_file)
            if not det_path.is_absolute() and not det_path.exists():
                det_path = self.root / det_path
            self.det_file = det_path
            records = self._det_records(load_detections(det_path, set(images), det_score_thr), images, aspect,
                                        spec.num_keypoints)
        if check_files:
            check_images_exist(records, self.ann_file)
        if aug is None and train:
            aug = AugmentConfig()
        source = str(self.ann_file if det_file is None else self.det_file)
        super().__init__(records, spec, input_hw, train, aug, source=source)
        self.box_source = "gt" if det_file is None else "detections"

    def _file(self, image: dict) -> str:
        return str(self.image_dir / image["file_name"])

    def _gt_records(self, data: dict, images: dict, aspect: float, k: int,
                    jitter: np.random.Generator | None = None) -> list[dict]:
        records: list[dict] = []
        for a in sorted(data["annotations"], key=lambda a: (a["image_id"], a["id"])):
            if a.get("iscrowd", 0):
                continue
            im = images[a["image_id"]]
            width, height = check_image_size(im, self.ann_file)
            box = sanitize_box(a["bbox"], width, height, a.get("area"))
            kp = np.asarray(a["keypoints"], dtype=np.float32).reshape(k, 3)
            if box is None or kp.max() == 0 or a.get("num_keypoints", 1) == 0:
                continue
            center, scale = box_to_center_scale(*box, aspect_ratio=aspect, jitter_rng=jitter)
            joints = np.concatenate([kp[:, :2], np.minimum(1, kp[:, 2:3])], axis=1)
            records.append({"image_file": self._file(im), "image_id": a["image_id"], "center": center,
                            "scale": scale, "joints": joints, "score": 1.0, "bbox_id": len(records),
                            "ann_id": a["id"], "width": width, "height": height,
                            "bbox": [float(v) for v in a["bbox"][:4]]})  # as annotated (mmpose 1.x boxes)
        return records

    def _det_records(self, dets: list[dict], images: dict, aspect: float, k: int) -> list[dict]:
        records: list[dict] = []
        for d in dets:
            center, scale = box_to_center_scale(*[float(v) for v in d["bbox"][:4]], aspect_ratio=aspect)
            width, height = check_image_size(images[d["image_id"]], self.ann_file)
            records.append({"image_file": self._file(images[d["image_id"]]), "image_id": d["image_id"],
                            "center": center, "scale": scale, "joints": np.zeros((k, 3), np.float32),
                            "score": float(d["score"]), "bbox_id": len(records), "width": width,
                            "height": height})
        return records


def build_coco(spec: DatasetSpec, root: str | Path, split: str, input_hw, train: bool = False,
               det_file: str | Path | None = None, det_score_thr: float = 0.0) -> CocoPoseDataset:
    """The builder of COCO-style annotations (registered as ``"coco"``), for any spec in that style."""
    return CocoPoseDataset(root, split, input_hw, train, det_file=det_file, det_score_thr=det_score_thr, spec=spec)


register_builder("coco", build_coco)
