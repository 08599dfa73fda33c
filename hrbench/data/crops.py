"""Where a sample's joints lie in its crop, recomputed from the record and the sample's crop
parameters, independently of the warp and the targets (what ``hrbench data show`` draws)."""

from __future__ import annotations

import numpy as np

from hrbench.data.base import TopDownDataset, load_image
from hrbench.data.transforms import apply_affine, crop_matrix, flip_joints


def crop_joints(ds: TopDownDataset, idx: int, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Joints (K, 2) in crop pixels and visibility (K,) of sample ``idx``, recomputed from the record and
    the sample's crop parameters (mirror, centre, scale, rotation) - independent of the warp and targets."""
    r = ds.records[idx]
    joints, vis = r["joints"][:, :2].astype(np.float64), r["joints"][:, 2].astype(np.float64)
    if meta["flipped"]:
        width = np.asarray(load_image(r["image_file"])).shape[1]
        joints, vis = flip_joints(joints, vis, width, ds.spec.flip_pairs)
    h, w = ds.input_hw
    m = crop_matrix(ds.codec.affine, meta["center"], meta["scale"], meta["rotation"], (w, h))
    return apply_affine(joints, m), vis > 0
