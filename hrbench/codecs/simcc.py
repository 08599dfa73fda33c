"""SimCC, coordinate classification (Li et al., ECCV 2022), as RTMPose trains and reads it (Jiang et al.,
2023, arXiv 2303.07399, Sec. 3.2-3.3); facts from mmpose 1.x @759b39c, with the RTMPose configs' codec
``SimCCLabel(input_size=(192, 256), sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False,
use_dark=False)`` and loss ``KLDiscretLoss(use_target_weight=True, beta=10., label_softmax=True)``
(``rtmpose-t_8xb256-420e_coco-256x192.py`` lines 47-53, 97-101):

* Targets (``mmpose/codecs/simcc_label.py`` 202-311, Gaussian smoothing): one vector of 2W x bins and
  one of 2H y bins per keypoint; the centre is the joint times the split ratio, rounded half to even
  (``np.around``); the bins hold exp(-(i - mu)^2 / (2 sigma^2)) over the whole vector (not truncated,
  not normalised: ``normalize=False``), sigma = (4.9, 5.66) bins for x, y. The weight is the visibility, min(1, v);
  a keypoint not visible (< 0.5) gets zero vectors; one whose 3-sigma window, [mu - 3 sigma, mu + 3 sigma
  + 1], lies wholly outside the bins on either axis gets zero vectors and weight 0 (the affine
  ``TopdownAffine`` does not mask keypoints itself).
* Decoding (``mmpose/codecs/utils/post_processing.py`` ``get_simcc_maximum`` 41-105): argmax per axis;
  confidence = the smaller of the two maxima (raw logits, no softmax); where it is <= 0 the location is
  -1 before the division by the split ratio (so -0.5 px). Coordinates are crop pixels: the frame is the
  input (W, H), as mmpose 1.x maps them back (``keypoints / input_size * input_scale + input_center -
  0.5 * input_scale``).
* Flip test (``mmpose/models/utils/tta.py`` ``flip_vectors`` 71-88): x vectors reversed and left/right
  swapped, y vectors swapped only; no shift (reversal maps x bin i to 2W - 1 - i, a one-bin = 0.5 px
  offset from the mirror 2(W - 1) - i of the crop's pixel grid, kept as the official code has it).
* Loss (``mmpose/models/losses/classification_loss.py`` ``KLDiscretLoss`` 142-215): per keypoint and
  axis, KL(softmax(beta_label t) || softmax(beta p)) averaged over the bins (beta = label_beta = 10),
  times the weight, summed over keypoints and both axes, divided by K. The official total also sums
  over the batch (loss = sum / K); hrbench's codec contract reports the per-sample value and its batch
  mean, i.e. the official figure divided by the batch size (an Adam-type update does not change under
  that constant scale, a gradient-norm clip threshold does).
* Crop: the non-UDP affine (``TopdownAffine`` with ``use_udp=False``, ``get_warp_matrix``), hrbench's
  ``"msra"`` affine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hrbench.codecs.base import Codec, Decoded, register_codec


def bins(input_hw: tuple[int, int], split_ratio: float) -> tuple[int, int]:
    """(x bins, y bins) = round(W * ratio), round(H * ratio) (simcc_label.py 269-271)."""
    return int(np.around(input_hw[1] * split_ratio)), int(np.around(input_hw[0] * split_ratio))


def simcc_targets(joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int], sigma: tuple[float, float],
                  split_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x vectors (K, 2W), y vectors (K, 2H) float32 and weights (K,) float32 from joints (K, 2) in crop pixels."""
    wx, wy = bins(input_hw, split_ratio)
    k = len(joints)
    mu = np.around(np.asarray(joints, dtype=np.float64).reshape(k, 2) * split_ratio)
    weight = np.minimum(np.asarray(vis, dtype=np.float32).reshape(k), 1.0)  # mmpose 1.x: min(1, v)
    sig = np.asarray(sigma, dtype=np.float64)
    left, top = (mu - 3 * sig).T
    right, bottom = (mu + 3 * sig + 1).T
    outside = (left >= wx) | (top >= wy) | (right < 0) | (bottom < 0)
    keep = (weight >= 0.5) & ~outside
    weight[(weight >= 0.5) & outside] = 0.0
    tx = np.exp(-(np.arange(wx)[None, :] - mu[:, :1]) ** 2 / (2 * sig[0] ** 2)) * keep[:, None]
    ty = np.exp(-(np.arange(wy)[None, :] - mu[:, 1:]) ** 2 / (2 * sig[1] ** 2)) * keep[:, None]
    return tx.astype(np.float32), ty.astype(np.float32), weight


def simcc_targets_batch(joints: torch.Tensor, vis: torch.Tensor, input_hw: tuple[int, int],
                        sigma: tuple[float, float], split_ratio: float
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched :func:`simcc_targets` on the tensors' device (float64 inside): (B, K, 2), (B, K) ->
    (B, K, 2W), (B, K, 2H), (B, K), float32."""
    wx, wy = bins(input_hw, split_ratio)
    dev = joints.device
    b, k = joints.shape[:2]
    mu = torch.round(joints.to(torch.float64) * split_ratio)  # half to even, as np.around
    weight = vis.reshape(b, k).to(torch.float64).clamp(max=1.0)
    sx, sy = float(sigma[0]), float(sigma[1])
    outside = (mu[..., 0] - 3 * sx >= wx) | (mu[..., 1] - 3 * sy >= wy) | (mu[..., 0] + 3 * sx + 1 < 0) | \
              (mu[..., 1] + 3 * sy + 1 < 0)
    keep = (weight >= 0.5) & ~outside
    weight = weight.masked_fill((weight >= 0.5) & outside, 0.0)
    xs = torch.arange(wx, device=dev, dtype=torch.float64)
    ys = torch.arange(wy, device=dev, dtype=torch.float64)
    tx = torch.exp(-(xs - mu[..., :1]) ** 2 / (2 * sx ** 2)) * keep[..., None]
    ty = torch.exp(-(ys - mu[..., 1:]) ** 2 / (2 * sy ** 2)) * keep[..., None]
    return tx.to(torch.float32), ty.to(torch.float32), weight.to(torch.float32)


def simcc_maximum(pred_x: np.ndarray, pred_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, Wx), (N, K, Wy) -> bin locations (N, K, 2) float32 (-1 where the confidence is <= 0)
    and confidences (N, K): the smaller of the two axis maxima (``get_simcc_maximum``)."""
    locs = np.stack([pred_x.argmax(axis=-1), pred_y.argmax(axis=-1)], axis=-1).astype(np.float32)
    vals = np.minimum(pred_x.max(axis=-1), pred_y.max(axis=-1))
    locs[vals <= 0.0] = -1.0
    return locs, vals


def kl_discrete_loss(pred_x: torch.Tensor, pred_y: torch.Tensor, target_x: torch.Tensor, target_y: torch.Tensor,
                     weight: torch.Tensor, beta: float = 10.0, label_beta: float = 10.0,
                     label_softmax: bool = True) -> torch.Tensor:
    """``KLDiscretLoss`` per sample (B,): sum over keypoints and both axes of
    mean_bins KL(labels || softmax(beta pred)) times the weight, divided by K (module docstring)."""
    b, k = pred_x.shape[:2]
    total = torch.zeros(b, k, dtype=torch.float32, device=pred_x.device)
    for pred, target in ((pred_x, target_x), (pred_y, target_y)):
        log_pt = F.log_softmax(pred.float() * beta, dim=-1)
        labels = target.float()
        if label_softmax:
            labels = F.softmax(labels * label_beta, dim=-1)
        total = total + F.kl_div(log_pt, labels, reduction="none").mean(dim=-1)
    return (total * weight.reshape(b, k).float()).sum(dim=1) / k


@register_codec("simcc")
@dataclasses.dataclass(frozen=True)
class SimCC(Codec):
    """SimCC x / y bin vectors at ``split_ratio`` bins per pixel, Gaussian-smoothed (``sigma`` x, y bins),
    decoded by argmax, trained with ``KLDiscretLoss`` (``beta``, ``label_beta``, ``label_softmax``)."""

    sigma: tuple[float, float] = (4.9, 5.66)
    split_ratio: float = 2.0
    beta: float = 10.0
    label_beta: float = 10.0
    label_softmax: bool = True

    target_keys = ("target_x", "target_y", "target_weight")

    def encode(self, joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        tx, ty, weight = simcc_targets(joints, vis, input_hw, self.sigma, self.split_ratio)
        return {"target_x": tx, "target_y": ty, "target_weight": weight}

    def encode_batch(self, joints: torch.Tensor, vis: torch.Tensor,
                     input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        tx, ty, weight = simcc_targets_batch(joints, vis, input_hw, self.sigma, self.split_ratio)
        return {"target_x": tx, "target_y": ty, "target_weight": weight}

    def decode(self, output: Any, post_process: str = "default") -> Decoded:
        """Argmax per axis, divided by the split ratio: crop pixels in the frame (W, H) of the input."""
        self.check_post_process(post_process)
        px, py = (np.asarray(o.detach().float().cpu().numpy() if isinstance(o, torch.Tensor) else o,
                             dtype=np.float32) for o in output)
        locs, vals = simcc_maximum(px, py)
        frame = (px.shape[-1] / self.split_ratio, py.shape[-1] / self.split_ratio)
        return Decoded(locs / np.float32(self.split_ratio), vals[..., None].astype(np.float32), frame)

    def flip_back(self, flipped_output: Any, flip_pairs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, ...]:
        px, py = flipped_output
        perm = list(range(px.shape[1]))
        for a, b in flip_pairs:
            perm[a], perm[b] = b, a
        return px[:, perm].flip(-1), py[:, perm]

    def loss(self, output: Any, *targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        target_x, target_y, weight = targets
        per_sample = kl_discrete_loss(output[0], output[1], target_x, target_y, weight, self.beta,
                                      self.label_beta, self.label_softmax)
        return per_sample if reduction == "none" else per_sample.mean()
