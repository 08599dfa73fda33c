"""Flip test: run the mirrored crop too, mirror its heatmaps back, swap left/right channels, shift
them one pixel right (the reference ``shift_heatmap``) and average with the plain heatmaps."""

from __future__ import annotations

import torch


def flip_back(heatmaps: torch.Tensor, flip_pairs) -> torch.Tensor:
    """Heatmaps (N, K, H, W) of a mirrored input -> the original frame: mirror W, swap pairs."""
    out = heatmaps.flip(-1)
    perm = list(range(out.shape[1]))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return out[:, perm]


def shift_right(heatmaps: torch.Tensor) -> torch.Tensor:
    """Shift by one pixel along W (column j takes column j-1; column 0 keeps its value)."""
    out = heatmaps.clone()
    out[..., 1:] = heatmaps[..., :-1]
    return out


def merge_flip(heatmaps: torch.Tensor, flipped_heatmaps: torch.Tensor, flip_pairs,
               shift: bool = True) -> torch.Tensor:
    """Average plain heatmaps with the flipped-input heatmaps brought back to the original frame."""
    back = flip_back(flipped_heatmaps, flip_pairs)
    if shift:
        back = shift_right(back)
    return (heatmaps + back) * 0.5


@torch.no_grad()
def flip_test(model: torch.nn.Module, images: torch.Tensor, flip_pairs, shift: bool = True) -> torch.Tensor:
    """Heatmaps of ``model`` on ``images`` (N, 3, H, W) averaged with its mirrored-input heatmaps."""
    return merge_flip(model(images), model(images.flip(3)), flip_pairs, shift)
