"""Evaluation arithmetic that must follow the reference (mmpose 0.16) bit for bit: OKS-NMS order among
equal scores, OKS sigmas, PCKh's float32 +1 shift and its two PCKh@0.1 rows. Expected values are
derived by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from hrbench.data.mpii import MPII_GT_NAMES
from hrbench.datasets.coco import COCO_SIGMAS
from hrbench.evaluation import oks_nms, pckh


def test_oks_nms_equal_scores_keep_the_later_index():
    # three identical poses with one score: every OKS is 1 > 0.9, so exactly one survives. The
    # reference visits np.argsort(scores)[::-1] = [2, 1, 0] and keeps index 2 (a stable
    # first-come order would keep 0)
    pose = np.array([[50.0, 50.0, 1.0], [60.0, 50.0, 1.0]])
    kpts = np.stack([pose, pose, pose])
    assert oks_nms(kpts, np.array([0.5, 0.5, 0.5]), np.full(3, 400.0), 0.9, (0.1, 0.1)) == [2]
    # two far-apart poses tied below a best one: all kept, the tie visited later index first
    far = np.stack([pose, pose + [100, 0, 0], pose + [200, 0, 0]])
    assert oks_nms(far, np.array([0.9, 0.7, 0.7]), np.full(3, 400.0), 0.9, (0.1, 0.1)) == [0, 2, 1]


def test_coco_sigmas_are_the_reference_values():
    # pycocotools' own table, which like the reference divides by 10 (.26 / 10, .35 / 10 and 1.07 / 10
    # are one ulp away from the literals .026, .035 and .107), so equality is exact
    from pycocotools.cocoeval import Params

    expected = Params(iouType="keypoints").kpt_oks_sigmas
    assert np.array_equal(np.asarray(COCO_SIGMAS, dtype=np.float64), expected)


def _one_joint_gt(gt_x: float, head_box) -> dict:
    """One person, only the head joint labelled (at (gt_x, 1) in 1-based pixels)."""
    missing = np.ones((1, 16))
    head = MPII_GT_NAMES.index("head")
    missing[0, head] = 0
    pos = np.zeros((1, 16, 2))
    pos[0, head] = (gt_x, 1.0)
    return {"dataset_joints": list(MPII_GT_NAMES), "jnt_missing": missing.T, "pos_gt_src": pos.transpose(1, 2, 0),
            "headboxes_src": np.asarray(head_box, float)[None].transpose(1, 2, 0)}


def test_pckh_shift_by_one_is_float32():
    # head box (0,0)-(6,8): diagonal 10, head size 0.6 * 10 = 6, PCKh@0.5 radius 3.
    # prediction x = 3 + 2^-22 (a float32), 0-based; ground truth x = 1 (1-based), y exact.
    # float64: x + 1 = 4 + 2^-22, error 3 + 2^-22 > 3 -> miss.
    # float32: 4 + 2^-22 is half an ulp above 4 (ulp 2^-21 in [4, 8)) and rounds to even, 4.0:
    # error exactly 3 -> 3 / 6 = 0.5 <= 0.5 -> hit, as in the reference.
    x = np.float32(3 + 2 ** -22)
    assert float(x) == 3 + 2 ** -22 and float(x + np.float32(1)) == 4.0
    preds = np.zeros((1, 16, 2), np.float32)
    preds[0, MPII_GT_NAMES.index("head")] = (x, 0.0)
    t = pckh(preds, _one_joint_gt(1.0, [[0, 0], [6, 8]]))
    assert t["Head"] == 100.0 and t["Mean"] == 100.0


@pytest.mark.parametrize(("err", "at_010", "at_011"), [(0.59375, 100.0, 100.0), (0.63, 0.0, 100.0), (0.7, 0.0, 0.0)])
def test_pckh_01_rows(err, at_010, at_011):
    # head size 6 (see above), ground truth x = 1, prediction x (0-based) -> error (x + 1) - 1 in float32:
    # 19/32 = 0.59375 (exact): 0.0990 of the head size -> hit at 0.10 and 0.11;
    # 0.63: 0.1050 -> miss at 0.10, hit at 0.11 (the row mmpose <= 0.16 reports as "PCKh@0.1");
    # 0.7: 0.1167 -> miss at both
    preds = np.zeros((1, 16, 2), np.float32)
    preds[0, MPII_GT_NAMES.index("head")] = (err, 0.0)
    t = pckh(preds, _one_joint_gt(1.0, [[0, 0], [6, 8]]))
    assert t["Mean@0.1"] == at_010 and t["Mean@0.1(mmpose<=0.16)"] == at_011
    assert t["Mean"] == 100.0
