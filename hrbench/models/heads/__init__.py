"""Heads: the head contract and registry (:mod:`.base`) and the registered heads, one module each
(:mod:`.heatmap`: the papers' 1x1-conv heatmap head; :mod:`.deconv`: SimpleBaseline's deconvolution head)."""

from hrbench.models.heads.base import Head, build_head, list_heads, register_head
from hrbench.models.heads.deconv import DeconvHead
from hrbench.models.heads.heatmap import HeatmapHead

__all__ = ["DeconvHead", "Head", "HeatmapHead", "build_head", "list_heads", "register_head"]
