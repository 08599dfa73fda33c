"""RTMPose's RTMCC head (Jiang et al., 2023, arXiv 2303.07399, Sec. 3.2 and Fig. 4), read by the SimCC
codec (:mod:`hrbench.codecs.simcc`). Facts from mmpose 1.x @759b39c
``mmpose/models/heads/coord_cls_heads/rtmcc_head.py`` (lines 102-161) and ``mmpose/models/utils/
rtmcc_block.py`` (GAU, ``Scale``; ``ScaleNorm`` in ``mmpose/models/utils/transformer.py`` 384-420), with
the configs' ``gau_cfg`` (hidden 256, s 128, expansion 2, SiLU, no relative bias, no rotary encoding,
no dropout / drop path; ``final_layer_kernel_size=7``):

* ``final_layer``: k x k conv (with bias) from the 1/32 features to K maps, flattened to K tokens of
  (H/32)(W/32) values;
* ``mlp``: ScaleNorm, then a bias-free linear layer to ``hidden_dims``;
* ``gau``: one gated attention unit over the K keypoint tokens (below);
* ``cls_x`` / ``cls_y``: bias-free linear layers to 2W and 2H bins (split ratio 2.0).

Output: ``(pred_x (N, K, 2W), pred_y (N, K, 2H))``. Init as the head's ``default_init_cfg``: conv
weights N(0, 0.001^2), every linear layer (the GAU's too; mmengine applies the head's init after the
GAU's own Xavier init) N(0, 0.01^2), biases 0; the GAU's ``gamma`` / ``beta`` U(0, 1), scales 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.codecs import Codec
from hrbench.errors import HrbenchError
from hrbench.models.heads.base import Head, register_head
from hrbench.models.shapes import Shape


class ScaleNorm(nn.Module):
    """ScaleNorm (Nguyen & Salazar, 2019): x / max(||x||_2 / sqrt(d), eps) * g, one learned scalar ``g``."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g

    def walk(self, w, x: Shape) -> Shape:
        w.record(self, x, x)
        return x


class Scale(nn.Module):
    """Channel-wise learned scale (the GAU's residual scale), initialised to 1."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def walk(self, w, x: Shape) -> Shape:
        w.record(self, x, x)
        return x


class GatedAttentionUnit(nn.Module):
    """The GAU of RTMCCBlock (Hua et al., 2022; rtmcc_block.py 122-277), self-attention over tokens:

    x' = ScaleNorm(x); u, v, z = split(SiLU(x' W_uv)) into e, e, s; q, k = z * gamma + beta;
    A = relu(q k^T / sqrt(s))^2; out = (u * (A v)) W_o; with a shortcut, out + Scale(x).
    The two matrix products (q k^T: K^2 s MACs, A v: K^2 e) are functional (``torch.bmm``).
    """

    def __init__(self, dims: int, out_dims: int, s: int = 128, expansion_factor: int = 2) -> None:
        super().__init__()
        self.s = s
        self.e = int(dims * expansion_factor)
        self.o = nn.Linear(self.e, out_dims, bias=False)
        self.uv = nn.Linear(dims, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand((2, s)))
        self.beta = nn.Parameter(torch.rand((2, s)))
        self.ln = ScaleNorm(dims)
        self.act_fn = nn.SiLU(inplace=True)
        self.shortcut = dims == out_dims
        self.res_scale = Scale(dims) if self.shortcut else None
        self.sqrt_s = math.sqrt(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=2)
        q, k = torch.unbind(base.unsqueeze(2) * self.gamma + self.beta, dim=2)
        kernel = torch.square(F.relu(torch.bmm(q, k.transpose(1, 2)) / self.sqrt_s))
        out = self.o(u * torch.bmm(kernel, v))
        return self.res_scale(x) + out if self.res_scale is not None else out

    def walk(self, w, x: Shape) -> Shape:
        y = w(self.act_fn, w(self.uv, w(self.ln, x)))
        out = w(self.o, (*y[:-1], self.e))
        w.record(self, x, out)  # the two functional matrix products, where a convention counts them
        if self.res_scale is not None:
            w(self.res_scale, x)
        return out


def attention_macs(m: GatedAttentionUnit, i: Shape, o: Shape) -> int:
    """MACs of the GAU's two functional products on (N, K, d) tokens: N K^2 (s + e)."""
    n, k = i[0], i[1]
    return n * k * k * (m.s + m.e)


@register_head("rtmcc")
class RTMCCHead(Head):
    """k x k conv -> K tokens, ScaleNorm + linear, GAU, x / y bin classifiers (module docstring).

    ``input_hw``: the network input (H, W) the head is built for; the backbone's map (stride
    ``feature_stride``, CSPNeXt's 32) must be (H/32, W/32) (the flattened token length), and the
    classifiers have 2W and 2H bins.
    """

    codec_name = "simcc"

    def __init__(self, in_channels: int, num_keypoints: int, codec: Codec | str | None = None,
                 input_hw: tuple[int, int] = (256, 192), final_kernel: int = 7, hidden_dims: int = 256,
                 attention_dims: int = 128, expansion_factor: int = 2, split_ratio: float = 2.0,
                 feature_stride: int = 32) -> None:
        super().__init__(in_channels, num_keypoints, codec)
        h, w = input_hw
        self.input_hw = (h, w)
        self.stride = feature_stride
        self.featuremap_hw = (h // feature_stride, w // feature_stride)
        tokens = self.featuremap_hw[0] * self.featuremap_hw[1]
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, final_kernel, padding=final_kernel // 2)
        self.mlp = nn.Sequential(ScaleNorm(tokens), nn.Linear(tokens, hidden_dims, bias=False))
        self.gau = GatedAttentionUnit(hidden_dims, hidden_dims, attention_dims, expansion_factor)
        self.cls_x = nn.Linear(hidden_dims, int(w * split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden_dims, int(h * split_ratio), bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[-2:]) != self.featuremap_hw:
            (h, w), (fh, fw), s = self.input_hw, self.featuremap_hw, self.stride
            raise HrbenchError(f"input {s * x.shape[-2]}x{s * x.shape[-1]} does not fit this model: its RTMCC "
                               f"head is built for {h}x{w} (a {fh}x{fw} feature map); build it for this "
                               f"input with --set input_size={s * x.shape[-2]},{s * x.shape[-1]}")
        feats = self.gau(self.mlp(torch.flatten(self.final_layer(x), 2)))
        return self.cls_x(feats), self.cls_y(feats)

    def walk(self, w, x: Shape) -> tuple[Shape, Shape]:
        y = w(self.final_layer, x)
        feats = w(self.gau, w(self.mlp, (y[0], y[1], y[2] * y[3])))
        return w(self.cls_x, feats), w(self.cls_y, feats)
