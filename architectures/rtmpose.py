"""RTMPose-t / s / m (Jiang et al., 2023, "RTMPose: Real-Time Multi-Person Pose Estimation based on
MMPose", arXiv 2303.07399): CSPNeXt + the RTMCC head + SimCC, as mmpose 1.x configures them
(``projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py``).

Configuration only; the model code is :mod:`hrbench.models.cspnext`, :mod:`hrbench.models.heads.rtmcc`
and :mod:`hrbench.codecs.simcc`.

The training recipes (registered with each variant):

COCO: mmpose 1.x ``projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py``:

* 420 epochs (line 8), batch 256 per GPU (line 11) x 8 GPUs (the file name), lr 4e-3 (line 10);
* ``AdamW``, weight decay 0 for t and s, 0.05 for m (line 20), no decay on norm layers and biases
  (``paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True)``, lines 21-23), gradients
  clipped to global L2 norm 35 (``clip_grad=dict(max_norm=35, norm_type=2)``, line 21);
* ``LinearLR(start_factor=1e-5, by_epoch=False, begin=0, end=1000)`` and ``CosineAnnealingLR(eta_min=base_lr *
  0.05, begin=max_epochs // 2, end=max_epochs, T_max=max_epochs // 2, by_epoch=True,
  convert_to_iter_based=True)`` (lines 26-41): hrbench's ``flat-cosine``;
* EMA: ``EMAHook(ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True)`` for s and m, commented
  out for t ("Turn off EMA while training the tiny model", lines 221-228 of -t);
* the two-stage augmentation (lines 119-182) switched by ``PipelineSwitchHook(switch_epoch=max_epochs -
  stage2_num_epochs)`` with ``stage2_num_epochs = 30`` (lines 9, 229-232): hrbench's ``rtmpose`` set.

MPII: the one official config, ``configs/body_2d_keypoint/rtmpose/mpii/rtmpose-m_8xb64-210e_mpii-256x256.py``
(210 epochs, batch 64 x 8, lr 4e-3, AdamW weight decay 0.05, no gradient clipping, the same schedule, EMA and
augmentation with stage 2 the last 30 epochs); hrbench uses it for every variant.

Not carried over: ``auto_scale_lr = dict(base_batch_size=1024)`` (line 44) is off unless mmpose's training is
started with ``--auto-scale-lr``, so the published runs used lr 4e-3 at their total batch 2048, which is the
batch hrbench scales from; ``randomness = dict(seed=21)`` (hrbench's ``--seed``); ``val_interval=10``
(``--val-interval``).
"""

from __future__ import annotations

from hrbench.errors import ConfigError
from hrbench.models.cspnext import CSPNeXtConfig
from hrbench.registry import Recipe, RecipeFn, register_model

#: mmpose's clip (global L2 norm 35) acts on KLDiscretLoss summed over a GPU's 256 samples (divided by K only);
#: hrbench's SimCC loss is the per-sample mean (the codec contract), so its gradient is 1/256 of mmpose's and the
#: same clip is 35 / 256 (exact at the official 256 per GPU; state it when changing --batch).
CLIP = 35.0 / 256

#: Per-variant differences of the COCO configs: (weight decay, EMA).
_VARIANTS = {"t": (0.0, "none"), "s": (0.0, "exp-momentum"), "m": (0.05, "exp-momentum")}


def rtmpose_recipe(dataset: str, input_hw: tuple[int, int], variant: str = "t") -> Recipe:
    """The official recipe of RTMPose-``variant`` (t, s or m) for ``dataset`` (module docstring)."""
    if variant not in _VARIANTS:
        raise ConfigError(f"unknown RTMPose variant {variant!r}; known: {', '.join(_VARIANTS)}")
    common = dict(family="rtmpose", lr=4e-3, lr_steps=(), gamma=1.0, warmup_iters=1000, warmup_ratio=1e-5,
                  optimizer="adamw", schedule="flat-cosine", eta_min_ratio=0.05, norm_decay_mult=0.0,
                  bias_decay_mult=0.0, ema_momentum=0.0002, ema_gamma=2000.0, ema_interval=1, augment="rtmpose",
                  stage2_epochs=30)
    if dataset == "mpii":
        return Recipe(source="mmpose 1.x configs/body_2d_keypoint/rtmpose/mpii/rtmpose-m_8xb64-210e_mpii-256x256.py",
                      epochs=210, batch_per_gpu=64, gpus=8, weight_decay=0.05, cosine_begin=105, ema="exp-momentum",
                      **common)
    wd, ema = _VARIANTS[variant]
    config = f"projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-{variant}_8xb256-420e_coco-256x192.py"
    return Recipe(source=f"mmpose 1.x {config}",
                  epochs=420, batch_per_gpu=256, gpus=8, weight_decay=wd, cosine_begin=210, clip_grad_norm=CLIP,
                  ema=ema, **common)


def _variant(v: str) -> RecipeFn:
    def recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
        return rtmpose_recipe(dataset, input_hw, v)

    recipe.__name__ = recipe.__qualname__ = f"rtmpose_{v}_recipe"
    recipe.__doc__ = f"RTMPose-{v}'s recipe (``register_model(..., recipe=rtmpose_{v}_recipe)``)."
    return recipe


#: ``recipe(dataset, input_hw)`` of each variant, to register with it.
rtmpose_t_recipe, rtmpose_s_recipe, rtmpose_m_recipe = (_variant(v) for v in "tsm")


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
                reported=(("rtmpose-readme", "RTMPose-t"),),
                recipe=rtmpose_t_recipe, tags=("rtmpose", "small"), notes=_notes("t", _MEASURED.format(
                    p="3,337,007", g="0.359", raw="358,640,384", pub_p="3.34", pub_g="0.36")))
def rtmpose_t() -> CSPNeXtConfig:
    return CSPNeXtConfig(deepen_factor=0.167, widen_factor=0.375)


@register_model("rtmpose_s", aliases=("rtmpose-s",), paper="rtmpose", convention="mmcv-flops",
                reported=(("rtmpose-readme", "RTMPose-s"),),
                recipe=rtmpose_s_recipe, tags=("rtmpose", "small"), notes=_notes("s", _MEASURED.format(
                    p="5,473,251", g="0.682", raw="682,034,928", pub_p="5.47", pub_g="0.68")))
def rtmpose_s() -> CSPNeXtConfig:
    return CSPNeXtConfig(deepen_factor=0.33, widen_factor=0.5)


@register_model("rtmpose_m", aliases=("rtmpose-m",), paper="rtmpose", convention="mmcv-flops",
                reported=(("rtmpose-readme", "RTMPose-m"),),
                recipe=rtmpose_m_recipe, tags=("rtmpose",),
                notes=_notes("m", _MEASURED.format(
                    p="13,587,611", g="1.929", raw="1,928,529,104", pub_p="13.59", pub_g="1.93")))
def rtmpose_m() -> CSPNeXtConfig:
    return CSPNeXtConfig(deepen_factor=0.67, widen_factor=0.75)
