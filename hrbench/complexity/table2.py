"""Lite-HRNet paper, Section 3.2 / Table 2: cost of a 1x1 convolution vs. the 3x3 depthwise
convolution vs. conditional channel weighting (CCW), for the two-branch example
X1 = 64x64x40, X2 = 32x32x80 (N_s = H_s W_s; the printed "M" is binary, 2**20).

The closed forms are the paper's; for the two convolution rows the count is also taken from
real ``nn.Conv2d`` layers with the analytic walker (multiply-accumulates, the
``hrnet-summary`` convention), and for the CCW rows from small modules built to the same
theory (the weighting itself is one multiply per element, counted by hand as the paper does).
"""

from __future__ import annotations

import dataclasses

from torch import nn

from hrbench.complexity.conventions import HRNET_SUMMARY
from hrbench.complexity.walker import Walker

#: (H, W, C) of X1 and X2 in Table 2's example.
EXAMPLE: tuple[tuple[int, int, int], ...] = ((64, 64, 40), (32, 32, 80))

#: Table 2's "Example FLOPs" column as printed (binary millions; strings: the printed precision counts).
PRINTED = {
    "1x1 convolution": "12.5",
    "3x3 depthwise convolution": "2.1",
    "CCW w/ spatial weights": "0.25",
    "CCW w/ multi-resolution weights": "0.26",
    "CCW": "0.51",
}

FORMULAS = {
    "1x1 convolution": "sum_s N_s C_s^2",
    "3x3 depthwise convolution": "sum_s 9 N_s C_s",
    "CCW w/ spatial weights": "sum_s (2 C_s^2 + N_s C_s)",
    "CCW w/ multi-resolution weights": "2 (sum_s C_s)^2 + sum_s N_s C_s",
    "CCW": "2 (sum_s C_s)^2 + 2 sum_s (C_s^2 + N_s C_s)",
}


@dataclasses.dataclass(frozen=True)
class Table2Row:
    model: str
    formula: str
    count: int  # raw multiply(-accumulate)s, counted from layers
    mflops: float  # count / 2**20, the paper's unit
    printed: str
    closed_form: int  # the printed formula evaluated (equal to ``count``)

    @property
    def matches(self) -> bool:
        """The count rounds to the printed value at the printed precision."""
        decimals = len(self.printed.split(".")[1]) if "." in self.printed else 0
        return round(self.mflops, decimals) == float(self.printed)


def closed_form(example: tuple[tuple[int, int, int], ...] = EXAMPLE) -> dict[str, int]:
    """Table 2's theory-complexity formulas evaluated on ``example`` [(H, W, C), ...]."""
    n = [h * w for h, w, _ in example]
    c = [ch for _, _, ch in example]
    nc = sum(a * b for a, b in zip(n, c, strict=True))
    c2 = sum(x * x for x in c)
    return {
        "1x1 convolution": sum(a * b * b for a, b in zip(n, c, strict=True)),
        "3x3 depthwise convolution": 9 * nc,
        "CCW w/ spatial weights": 2 * c2 + nc,
        "CCW w/ multi-resolution weights": 2 * sum(c) ** 2 + nc,
        "CCW": 2 * sum(c) ** 2 + 2 * (c2 + nc),
    }


def _walk_macs(module: nn.Module, shape: tuple[int, ...]) -> int:
    w = Walker(module, HRNET_SUMMARY)
    w(module, shape)
    return sum(w.counts.values())


def layer_counts(example: tuple[tuple[int, int, int], ...] = EXAMPLE) -> dict[str, int]:
    """The same five costs from real layers, counted by the analytic walker (MACs):

    * a 1x1 conv C_s -> C_s and a 3x3 depthwise conv on each branch;
    * spatial weights F_s: GAP -> FC(C_s, C_s) -> ReLU -> FC(C_s, C_s) -> sigmoid, then the
      element-wise weighting (N_s C_s multiplies);
    * multi-resolution weights H_s: two 1x1 convs on the concatenated, pooled channels
      (sum_s C_s, one position as in the paper's formula), then the weighting.
    """
    one_by_one = dw = spatial = 0
    for h, w, c in example:
        one_by_one += _walk_macs(nn.Conv2d(c, c, 1, bias=False), (1, c, h, w))
        dw += _walk_macs(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), (1, c, h, w))
        f_s = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c),
                            nn.Sigmoid())
        spatial += _walk_macs(f_s, (1, c, h, w))
    total_c = sum(c for _, _, c in example)
    h_s = nn.Sequential(nn.Conv2d(total_c, total_c, 1), nn.ReLU(), nn.Conv2d(total_c, total_c, 1), nn.Sigmoid())
    cross = _walk_macs(h_s, (1, total_c, 1, 1))
    weighting = sum(h * w * c for h, w, c in example)
    return {
        "1x1 convolution": one_by_one,
        "3x3 depthwise convolution": dw,
        "CCW w/ spatial weights": spatial + weighting,
        "CCW w/ multi-resolution weights": cross + weighting,
        "CCW": cross + spatial + 2 * weighting,
    }


def table2(example: tuple[tuple[int, int, int], ...] = EXAMPLE) -> list[Table2Row]:
    """Table 2 rows (counted from layers, beside the closed forms) with the printed values."""
    counts, closed = layer_counts(example), closed_form(example)
    return [Table2Row(name, FORMULAS[name], counts[name], counts[name] / 2**20, PRINTED[name], closed[name])
            for name in PRINTED]
