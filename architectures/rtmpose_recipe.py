"""RTMPose's official training recipes (Jiang et al., 2023), per variant and data set (registers nothing).

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
from hrbench.registry import Recipe, RecipeFn

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
                  epochs=420, batch_per_gpu=256, gpus=8, weight_decay=wd, cosine_begin=210, clip_grad_norm=35.0,
                  ema=ema, **common)


def _variant(v: str) -> RecipeFn:
    def recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
        return rtmpose_recipe(dataset, input_hw, v)

    recipe.__name__ = recipe.__qualname__ = f"rtmpose_{v}_recipe"
    recipe.__doc__ = f"RTMPose-{v}'s recipe (``register_model(..., recipe=rtmpose_{v}_recipe)``)."
    return recipe


#: ``recipe(dataset, input_hw)`` of each variant, to register with it.
rtmpose_t_recipe, rtmpose_s_recipe, rtmpose_m_recipe = (_variant(v) for v in "tsm")
