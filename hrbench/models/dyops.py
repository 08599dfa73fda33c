"""The two dynamic operators of Chen et al.: dynamic convolution ("Dynamic Convolution: Attention over
Convolution Kernels", CVPR 2020) and dynamic ReLU ("Dynamic ReLU", ECCV 2020).

- :class:`DynamicConv2d` (DyConv Sec. 3): K parallel kernels aggregated per sample,
  W(x) = sum_k pi_k(x) W_k with sum_k pi_k = 1; the attention pi(x) is squeeze-and-excitation-like
  (global average pool, FC to C/4, ReLU, FC to K) followed by a softmax with temperature tau
  (Sec. 3.2: a large tau, 30, keeps the attention near uniform early in training; the paper anneals
  it linearly to 1 over the first epochs, which hrbench's engine does not: ``temperature`` stays as set).
  The per-sample convolution is Dite-HRNet's batched grouped convolution
  (:class:`hrbench.models.dynamic.KernelAggregation`: the batch folded into the groups, exact, one
  ``F.conv2d``), so the ONNX export's static rewrite applies unchanged.
- :class:`DyReLU` (DY-ReLU-B, spatially shared and channel-wise, DY-ReLU Sec. 3): y_c = max_k (a_k^c x_c +
  b_k^c) with K linear pieces; the coefficients come from a hyper-function of the input
  (global average pool, FC to C/R, ReLU, FC to 2KC, 2 sigmoid - 1 -> residuals in [-1, 1]):
  a_k^c = alpha_k + lambda_a r_k^c, b_k^c = beta_k + lambda_b r_{K+k}^c, with alpha_1 = 1 and every other
  alpha, beta 0 (a ReLU at zero residual) and lambda_a = 1.0, lambda_b = 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

from hrbench.models.dynamic import DynamicKernelAggregation, KernelAggregation
from hrbench.models.shapes import Shape


class SoftmaxKernelAttention(nn.Module):
    """pi(x) of DyConv Sec. 3.2: ``avg_pool`` -> ``fc1`` (C -> max(C/``reduction``, K), bias) -> ReLU
    -> ``fc2`` (-> K, bias) -> softmax(z / ``temperature``) over the K kernels; returns (N, K)."""

    def __init__(self, channels: int, num_kernels: int, reduction: int = 4, temperature: float = 30.0) -> None:
        super().__init__()
        hidden = max(channels // reduction, num_kernels)
        self.temperature = float(temperature)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, num_kernels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc2(self.relu(self.fc1(self.avg_pool(x))))
        return torch.softmax(z.flatten(1) / self.temperature, dim=1)

    def walk(self, w, x: Shape) -> Shape:
        z = w(self.fc2, w(self.relu, w(self.fc1, w(self.avg_pool, x))))
        return (z[0], z[1])


class DynamicConv2d(DynamicKernelAggregation):
    """Dynamic convolution (DyConv Sec. 3, Fig. 3): ``attention`` (:class:`SoftmaxKernelAttention`) and
    ``aggregation`` (the K kernels ``aggregation.weight`` of shape (K, C_out, C_in/groups, k, k), one
    convolution per sample with its aggregated kernel). A DynamicKernelAggregation, so the export and
    the counters treat it as Dite-HRNet's DKA (only the attention differs)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, bias: bool = False, num_kernels: int = 4, reduction: int = 4,
                 temperature: float = 30.0) -> None:
        nn.Module.__init__(self)
        self.attention = SoftmaxKernelAttention(in_channels, num_kernels, reduction, temperature)
        self.aggregation = KernelAggregation(in_channels, out_channels, kernel_size, stride, padding, 1, groups,
                                             bias, num_kernels)


class DyReLU(nn.Module):
    """DY-ReLU-B (see the module docstring): ``avg_pool``, ``fc1``, ``relu``, ``fc2`` (output laid out
    (N, C, 2K): the K slopes' then the K intercepts' residuals of each channel), ``sigmoid``."""

    def __init__(self, channels: int, reduction: int = 4, pieces: int = 2,
                 lambdas: tuple[float, float] = (1.0, 0.5)) -> None:
        super().__init__()
        self.channels, self.pieces = channels, pieces
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, max(channels // reduction, 1), 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(max(channels // reduction, 1), 2 * pieces * channels, 1)
        self.sigmoid = nn.Sigmoid()
        self.register_buffer("lambdas", torch.tensor([lambdas[0]] * pieces + [lambdas[1]] * pieces),
                             persistent=False)
        self.register_buffer("alpha_beta", torch.tensor([1.0] + [0.0] * (2 * pieces - 1)), persistent=False)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, 2K): a_1..a_K, b_1..b_K of every channel for the input ``x``."""
        r = 2 * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x))))) - 1
        return self.alpha_beta + self.lambdas * r.reshape(x.shape[0], self.channels, 2 * self.pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.coefficients(x)[:, :, :, None, None]  # (N, C, 2K, 1, 1)
        k = self.pieces
        return (x.unsqueeze(2) * theta[:, :, :k] + theta[:, :, k:]).amax(dim=2)

    def walk(self, w, x: Shape) -> Shape:
        w(self.sigmoid, w(self.fc2, w(self.relu, w(self.fc1, w(self.avg_pool, x)))))
        w.record(self, x, x)  # the K linear pieces and their max: a rule of the card's convention, if any
        return x
