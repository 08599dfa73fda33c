"""The OpenCV crop warp and decode (the reference's ``cv2.warpAffine`` / ``mmcv.imread``), the device-side
warp against it, image verification, and one-line errors for wrong-typed JSON values."""

from __future__ import annotations

import json
import math
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from hrbench.data import build_dataset, load_image, verify_images
from hrbench.data.raw import pad_images
from hrbench.data.synth import generate
from hrbench.data.transforms import affine_matrix, box_to_center_scale, warp_image
from hrbench.errors import DataError
from hrbench.evaluation import evaluate, predict
from hrbench.speed.gpu_pipeline import warp_crops


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv2") / "coco"
    generate("coco", root, n_train=2, n_val=4, seed=5)
    return root


def reference_matrix(center, scale, rot: float, out_wh) -> np.ndarray:
    """The reference construction, written out: three float32 point pairs (centre, a point half a
    crop width above it turned by ``rot``, and the third corner of the right angle), solved by
    ``cv2.getAffineTransform``."""
    src_w = scale[0] * 200.0
    t = math.radians(rot)
    src_dir = np.array([0.5 * src_w * math.sin(t), -0.5 * src_w * math.cos(t)])  # (0, -w/2) turned by rot
    dst_dir = np.array([0.0, -0.5 * out_wh[0]])

    def third(a, b):
        v = a - b
        return b + np.array([-v[1], v[0]])

    c = np.asarray(center, float)
    d0 = np.array([out_wh[0] * 0.5, out_wh[1] * 0.5])
    src = np.float32([c, c + src_dir, third(c, c + src_dir)])
    dst = np.float32([d0, d0 + dst_dir, third(d0, d0 + dst_dir)])
    return cv2.getAffineTransform(src, dst)


def test_warp_border_band_hand_values():
    # a flat 200 image, 1:1 crop (scale * 200 = crop width 48): crop (x, y) samples the source at
    # (x + cx - 24, y + cy - 32). cx = 23.5, cy = 31.75 -> crop (0, 0) samples (-0.5, -0.25): the
    # zero border takes half in x and a quarter in y, 200 * 0.5 * 0.75 = 75; crop (1, 0) samples
    # (0.5, -0.25) -> 200 * 0.75 = 150; crop (0, 1) samples (-0.5, 0.75) -> 100; (1, 1) -> 200.
    # (Pillow counted every sample point >= -0.5 as inside and gave 200 at all four.)
    img = np.full((100, 80, 3), 200, np.uint8)
    m = affine_matrix((23.5, 31.75), (48 / 200, 64 / 200), 0.0, (48, 64))
    crop = warp_image(img, m, (48, 64))
    assert crop.shape == (64, 48, 3) and crop.dtype == np.uint8
    assert crop[0, 0].tolist() == [75] * 3 and crop[0, 1].tolist() == [150] * 3
    assert crop[1, 0].tolist() == [100] * 3 and crop[1, 1].tolist() == [200] * 3
    assert (crop[1:, 1:] == 200).all()


@pytest.mark.parametrize("rot", [0.0, 23.0, -61.0])
def test_warp_equals_cv2_with_reference_matrix(rot):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    # a person box touching the top-left image corner: the crop reaches past two borders
    center, scale = box_to_center_scale(0.0, 0.0, 40.0, 70.0, 192 / 256)
    ours = warp_image(img, affine_matrix(center, scale, rot, (192, 256)), (192, 256)).astype(int)
    ref = cv2.warpAffine(img, reference_matrix(center, scale, rot, (192, 256)), (192, 256),
                         flags=cv2.INTER_LINEAR).astype(int)
    assert np.abs(ours - ref).max() <= 1
    assert (ref == 0).all(axis=2).mean() > 0.1  # the crop does reach outside the image


def test_device_warp_matches_cv2_warp_with_border_fade():
    rng = np.random.default_rng(0)
    sizes = [(70, 90), (120, 64), (96, 96), (50, 50)]  # (H, W), zero-padded into one batch
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    hw = (64, 48)
    mats = [affine_matrix((w * 0.1, h * 0.4), (w / 200 * 0.8, h / 200 * 0.8), rot, (hw[1], hw[0]))
            for (h, w), rot in zip(sizes, (0.0, 31.0, -57.5, 0.0), strict=True)]
    mats[3] = np.zeros((2, 3))  # degenerate (zero-size box): OpenCV fills with pixel (0, 0)
    raw, size_t = pad_images(images)
    out = warp_crops(raw, torch.from_numpy(np.stack(mats)), hw, size_t, normalize=False)
    out = out.permute(0, 2, 3, 1).numpy()
    ref = np.stack([warp_image(im, m, (hw[1], hw[0])) for im, m in zip(images, mats, strict=True)])
    diff = np.abs(out - ref)
    assert diff.max() <= 1.0
    assert (diff > 0.5).mean() < 1e-3
    assert (ref[3] == images[3][0, 0]).all() and (out[3] == images[3][0, 0]).all()
    assert (ref[:3] == 0).all(axis=-1).mean() > 0.05  # the crops reach past the image borders


def test_load_image_applies_exif_orientation_as_cv2(tmp_path):
    # the reference decodes with cv2.imread(IMREAD_COLOR), which turns an EXIF orientation-6 image
    # (stored 40 wide x 60 high) upright: 60 wide x 40 high
    a = np.zeros((60, 40, 3), np.uint8)
    a[:, :, 0] = 255  # red in RGB
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=100)
    img = load_image(tmp_path / "r.jpg")
    assert img.shape == (40, 60, 3)
    assert img[20, 30, 0] > 240 and img[20, 30, 2] < 15  # RGB order


def _corrupt_copies(root, tmp_path):
    """A copy of ``root``, its val split built (the build checks each image's header), then one image
    truncated, one overwritten by garbage and one deleted: (root, files, dataset)."""
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    ds = build_dataset("coco", bad, "val")
    files = sorted((bad / "images" / "val").glob("*.jpg"))
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    files[1].write_bytes(b"not an image at all")
    files[2].unlink()
    return bad, files, ds


def test_verify_images(coco_root, tmp_path):
    verify_images(build_dataset("coco", coco_root, "val"))  # a good split passes
    bad, files, ds = _corrupt_copies(coco_root, tmp_path)
    with pytest.raises(DataError, match=rf"{files[0].name}: corrupt or unreadable image .*truncated.*; 3 of 4 image"):
        verify_images(ds)
    with pytest.raises(DataError, match="1 of 1 image files are bad"):
        verify_images([files[1]])
    with pytest.raises(DataError, match=rf"{files[1].name}: corrupt or unreadable image"):  # found at build too
        build_dataset("coco", bad, "val")


def test_getitem_bad_image_raises_data_error_with_path(coco_root, tmp_path):
    bad, files, ds = _corrupt_copies(coco_root, tmp_path)
    by_file = {r["image_file"]: i for i, r in enumerate(ds.records)}
    with pytest.raises(DataError, match=rf"{files[1]}: corrupt or unreadable image"):
        ds[by_file[str(files[1])]]
    with pytest.raises(DataError, match=rf"{files[2]}: image file not found"):
        ds[by_file[str(files[2])]]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, [by_file[str(files[1])]]), num_workers=1,
                                         collate_fn=lambda b: b)
    with pytest.raises(DataError, match=str(files[1])):
        next(iter(loader))


def _rewrite(root, tmp_path, edit, name="person_keypoints_val.json"):
    out = tmp_path / "edited"
    shutil.copytree(root, out)
    path = out / "annotations" / name
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return out, path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["annotations"][1].update(bbox=["1", "2", "3", "4"]), r"annotations\[1\] \(id \d+\)\.bbox must be"),
    (lambda d: d["annotations"][0].update(keypoints="0,0,0"), r"annotations\[0\] \(id \d+\)\.keypoints must be 51"),
    (lambda d: [im.update(width=None) for im in d["images"]], r"images entry id \d+: width must be a number"),
    (lambda d: d["annotations"][0].update(area="big"), r"annotations\[0\] \(id \d+\)\.area must be a number"),
])
def test_wrong_typed_annotation_values(coco_root, tmp_path, edit, message):
    root, path = _rewrite(coco_root, tmp_path, edit)
    with pytest.raises(DataError, match=rf"{path}: {message}"):
        build_dataset("coco", root, "val")


def _det_file(coco_root, tmp_path, dets):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    return path


def test_wrong_typed_detections(coco_root, tmp_path):
    img = json.loads((coco_root / "annotations" / "person_keypoints_val.json").read_text())["images"][0]["id"]
    good = {"image_id": img, "category_id": 1, "bbox": [10, 10, 50, 80], "score": 0.9}
    for bad, message in [({"score": "0.9"}, r"detection 1: score must be a number"),
                         ({"bbox": ["10", 10, 50, 80]}, r"detection 1\.bbox must be \[x, y, w, h\]"),
                         ({"bbox": "10 10 50 80"}, r"detection 1\.bbox must be"),
                         ({"image_id": [img]}, r"detection 1 refers to image_id")]:
        path = _det_file(coco_root, tmp_path, [good, {**good, **bad}])
        with pytest.raises(DataError, match=rf"{path}: {message}"):
            build_dataset("coco", coco_root, "val", det_file=path)


def test_zero_size_detection_is_kept_as_the_reference_does(coco_root, tmp_path):
    # the reference keeps a [10, 10, 0, 0] detection: scale 0, getAffineTransform of three coincident
    # points is the zero matrix, the crop is the image's pixel (0, 0) everywhere, every keypoint maps
    # back to the box centre (10, 10), area 0
    img = json.loads((coco_root / "annotations" / "person_keypoints_val.json").read_text())["images"][0]["id"]
    dets = [{"image_id": img, "category_id": 1, "bbox": [10, 10, 0, 0], "score": 0.9},
            {"image_id": img, "category_id": 1, "bbox": [20, 30, 60, 120], "score": 0.8}]
    ds = build_dataset("coco", coco_root, "val", det_file=_det_file(coco_root, tmp_path, dets))
    assert len(ds) == 2 and ds.records[0]["scale"].tolist() == [0.0, 0.0]
    sample = ds[0]
    first = load_image(ds.records[0]["image_file"])[0, 0]
    ref = warp_image(first[None, None].repeat(256, 0).repeat(192, 1), np.eye(2, 3), (192, 256))
    std = np.array([0.229, 0.224, 0.225])[:, None, None]
    mean = np.array([0.485, 0.456, 0.406])[:, None, None]
    back = sample["image"].numpy() * std * 255 + mean * 255
    assert np.abs(back - ref.transpose(2, 0, 1)).max() < 1e-3

    class Flat(torch.nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 17, 64, 48) + x.mean() * 0

    p = predict(Flat(), ds, batch_size=2)
    assert np.allclose(p["keypoints"][0, :, :2], 10.0) and p["area"][0] == 0.0
    m = evaluate(ds, p)
    assert 0.0 <= m["AP"] <= 100.0 and m["num_results"] >= 1
