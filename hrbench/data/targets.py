"""Training targets of the data pipeline: a dataset encodes each sample with its ``codec``
(:mod:`hrbench.codecs`; the engine sets the model's). The papers' MSRA heatmaps (one Gaussian per
keypoint at 1/4 input resolution, σ = 2, weights = visibility, as ``TopDownGenerateTarget``) are
the default; their functions live in :mod:`hrbench.codecs.heatmap` and are named here for data code."""

from __future__ import annotations

from hrbench.codecs.heatmap import HEATMAP_STRIDE, gaussian_targets, heatmap_size

__all__ = ["HEATMAP_STRIDE", "gaussian_targets", "heatmap_size"]
