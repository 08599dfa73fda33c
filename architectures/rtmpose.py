"""RTMPose-t / s / m (Jiang et al., 2023, "RTMPose: Real-Time Multi-Person Pose Estimation based on
MMPose", arXiv 2303.07399): CSPNeXt + the RTMCC head + SimCC, as mmpose 1.x configures them
(``projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py``).

Configuration only; the model code is :mod:`hrbench.models.cspnext`, :mod:`hrbench.models.heads.rtmcc`
and :mod:`hrbench.codecs.simcc`.
"""

from __future__ import annotations

import functools

from hrbench.models.cspnext import CSPNeXtConfig
from hrbench.registry import Recipe, register_model


def rtmpose_recipe(dataset: str, input_hw: tuple[int, int], weight_decay: float = 0.0) -> Recipe:
    """The RTMPose configs' schedule (lines 7-44) in the fields a :class:`Recipe` has today: 420 epochs,
    256 samples per GPU on 8 GPUs, lr 4e-3 (at that total batch of 2048; ``auto_scale_lr`` base 1024 is
    applied only on request), linear warm-up over 1000 iterations from 1e-5 x lr, no lr step (flat).

    The official recipe beyond these fields: AdamW (weight decay 0 for t and s, 0.05 for m; no decay on
    norm and bias parameters; gradient-norm clip 35), the lr flat to epoch 210 then cosine to 0.05 x lr at
    epoch 420 (per iteration), EMA (ExpMomentumEMA, momentum 2e-4, buffers too) for s and m but not t, and
    two augmentation stages switched at epoch 390 (stage 1: flip, half body, box scale [0.6, 1.4], rotation
    80, YOLOX HSV, blur p 0.1, median blur p 0.1, coarse dropout p 1; stage 2: no shift, scale [0.75, 1.25],
    rotation 60, coarse dropout p 0.5). Until hrbench's trainer has AdamW, ``weight_decay`` is what Adam
    would apply as L2: exact (0) for t and s.
    """
    return Recipe("rtmpose", "mmpose 1.x projects/rtmpose rtmpose-*_8xb256-420e_coco-256x192", 420, 256, 8, 4e-3,
                  lr_steps=(), warmup_iters=1000, warmup_ratio=1e-5, optimizer="adamw", weight_decay=weight_decay)


_COMMON = """
mmpose 1.x projects/rtmpose rtmpose-{v}_8xb256-420e_coco-256x192: CSPNeXt(P5, deepen {d}, widen {w},
channel attention, SiLU, SyncBN) to the 1/32 features ({c} ch), RTMCC head (7x7 conv -> K, flatten
8x6, ScaleNorm + linear -> 256, one GAU (s 128, e 512, SiLU), x / y classifiers to 384 / 512 bins),
SimCC codec (sigma 4.9 / 5.66 bins, split ratio 2), KLDiscretLoss (beta 10, label softmax). Backbone
pre-trained on AIC + COCO in the official runs (hrbench starts from scratch unless given a checkpoint).
Published (mmpose projects/rtmpose README, AIC+COCO table, COCO val2017 with detected boxes): AP {ap},
{p}M params, {g} GFLOPs, {ms} ms ONNX Runtime on an i7-11700.
"""
_MEASURED = """
Counted at 256x192 with mmcv's get_model_complexity_info rules (convention mmcv-flops: the counter of
mmpose's get_flops.py up to v1.0.0, when these figures were published): {p} params (K=17), the
published {pub_p}M; {g} decimal GFLOPs (raw {raw}), the published {pub_g}. mmcv counts no SiLU,
no ScaleNorm and none of the GAU's two functional matrix products (q k^T and A v: 17^2 x (128 + 512)
= 184,960 MACs), which the true MACs and the fvcore engine include; fvcore (the jit counter mmpose's
get_flops.py uses since 2023-04) rounds to the same published figure.
"""

_PUBLISHED = {"t": ("0.167", "0.375", 384, "68.5", "3.34", "0.36", "3.20"),
              "s": ("0.33", "0.5", 512, "72.2", "5.47", "0.68", "4.48"),
              "m": ("0.67", "0.75", 768, "75.8", "13.59", "1.93", "11.06")}


def _notes(v: str, measured: str) -> str:
    d, w, c, ap, p, g, ms = _PUBLISHED[v]
    return " ".join((_COMMON.format(v=v, d=d, w=w, c=c, ap=ap, p=p, g=g, ms=ms) + measured).split())


@register_model("rtmpose_t", aliases=("rtmpose-t",), paper="rtmpose", convention="mmcv-flops",
                recipe=rtmpose_recipe, tags=("rtmpose", "small"), notes=_notes("t", _MEASURED.format(
                    p="3,337,007", g="0.359", raw="358,640,384", pub_p="3.34", pub_g="0.36")))
def rtmpose_t() -> CSPNeXtConfig:
    return CSPNeXtConfig(deepen_factor=0.167, widen_factor=0.375)


@register_model("rtmpose_s", aliases=("rtmpose-s",), paper="rtmpose", convention="mmcv-flops",
                recipe=rtmpose_recipe, tags=("rtmpose", "small"), notes=_notes("s", _MEASURED.format(
                    p="5,473,251", g="0.682", raw="682,034,928", pub_p="5.47", pub_g="0.68")))
def rtmpose_s() -> CSPNeXtConfig:
    return CSPNeXtConfig(deepen_factor=0.33, widen_factor=0.5)


@register_model("rtmpose_m", aliases=("rtmpose-m",), paper="rtmpose", convention="mmcv-flops",
                recipe=functools.partial(rtmpose_recipe, weight_decay=0.05), tags=("rtmpose",),
                notes=_notes("m", _MEASURED.format(
                    p="13,587,611", g="1.929", raw="1,928,529,104", pub_p="13.59", pub_g="1.93")))
def rtmpose_m() -> CSPNeXtConfig:
    return CSPNeXtConfig(deepen_factor=0.67, widen_factor=0.75)
