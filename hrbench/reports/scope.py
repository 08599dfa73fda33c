"""What a printed row is beyond its network, as data: systems that are not top-down backbones (row
-> kind, shown in the tables instead of "not in hrbench") and rows measured with a decoding other
than the codec's default (row -> post-processing, shown beside the hrbench model). hrbench measures
top-down single-person networks (a backbone, a head, a codec); the systems below, rows of the
papers' comparison tables, are bottom-up, detector-integrated, regression-based or multi-stage
(Lite-HRNet Table 4 refs [13], [14], [33], [38]; the DPN slides' Table VII names only the methods)."""

from __future__ import annotations

#: (printed model, printed backbone or "*" for any) -> what the row is
OUTSIDE_SCOPE: dict[tuple[str, str], str] = {
    ("OpenPose", "*"): "bottom-up system (part affinity fields), outside hrbench's top-down scope",
    ("Mask-RCNN", "*"): "detector-integrated system (keypoint RoI head), not a top-down backbone",
    ("G-RMI", "*"): "two-stage system (Faster R-CNN + heatmap/offset ResNet), outside hrbench's scope",
    ("Integral Pose Regression", "*"): "regression-based method (integral soft-argmax decoder), outside scope",
    ("RMPE", "*"): "multi-stage system (STN + stacked-hourglass SPPE + pose NMS), outside scope",
    ("CPN", "ResNet-Inception"): "CPN test-dev entry on ResNet-Inception: no #Params/FLOPs published",
    ("Deepercut", "*"): "bottom-up multi-person graph method (ILP grouping), outside scope",
    ("MCA", "*"): "multi-stage system (stacked hourglass + multi-context attention), outside scope",
    ("JADA", "*"): "training method (adversarial augmentation) on a stacked hourglass, outside scope",
    ("LFP", "*"): "multi-stage stacked pyramid-residual network (PyraNet), outside scope",
    ("Deeply", "*"): "multi-stage deeply learned compositional model, outside scope",
    ("PIL", "*"): "multi-stage MPII method the slides name without a reference, outside scope",
}


#: printed model -> the post-processing its row is measured with (DARK: Zhang et al., CVPR 2020,
#: distribution-aware decoding; ``hrbench eval --dark``)
DECODING: dict[str, str] = {"DARK": "dark"}


def decoding_of(row: dict[str, str]) -> str:
    """The post-processing a printed row names ('' for the codec's default)."""
    return DECODING.get(row["model"], "")


def outside_scope(row: dict[str, str]) -> str:
    """What a printed row is when it is not a top-down backbone hrbench could hold; '' otherwise."""
    model, backbone = row["model"], row.get("backbone", "")
    return OUTSIDE_SCOPE.get((model, backbone)) or OUTSIDE_SCOPE.get((model, "*"), "")
