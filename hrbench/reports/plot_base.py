"""What every plot of hrbench shares (matplotlib Agg): the style, byte-for-byte reproducible PNG + SVG
files, greedy label placement, printed cells read as numbers.

Determinism: fixed figure sizes and dpi, ``svg.hashsalt`` fixed, no Date/Software metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

from hrbench.fsutil import atomic_write

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110
STYLE = {
    "svg.hashsalt": "hrbench",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: Colour per source paper (Okabe-Ito, colour-blind safe).
COLORS = {"lite": "#0072B2", "dite": "#D55E00", "dpn": "#009E73", "other": "#7f7f7f"}


#: Metadata left out of each file type (no date, no version: the same figure gives the same bytes).
NO_STAMPS = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}


def save(fig, out_dir: Path, name: str, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``name``.png and ``name``.svg (and whatever else ``formats`` names: ``pdf``) without
    timestamps; close the figure."""
    paths = []
    for ext in formats:
        path = out_dir / f"{name}.{ext}"
        with atomic_write(path, binary=True) as fh:  # the one atomic writer (hrbench.fsutil)
            fig.savefig(fh, format=ext, dpi=DPI, metadata=NO_STAMPS[ext])
        paths.append(path)
    plt.close(fig)
    return paths


def num(text: str) -> float | None:
    """A printed cell as a number; None when blank or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Label placement
# --------------------------------------------------------------------------------------------
_OFFSETS = ((6, 5), (6, -11), (-6, 5), (-6, -11), (6, 16), (6, -22), (-6, 16), (-6, -22), (14, -3), (-14, -3),
            (6, 27), (6, -33))


def place_labels(ax, xs: Iterable[float], ys: Iterable[float], labels: Iterable[str], fontsize: float = 8,
                 colors: Iterable[str] | None = None) -> None:
    """Annotate every point, trying offsets until the label box overlaps no earlier label or point."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the transforms (limits, scales)
    scale = 72.0 / fig.dpi
    pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    disp = [tuple(v * scale for v in ax.transData.transform(p)) for p in pts]
    boxes: list[tuple[float, float, float, float]] = [(dx - 3, dy - 3, dx + 3, dy + 3) for dx, dy in disp]
    colors = list(colors) if colors is not None else ["black"] * len(pts)
    labels = list(labels)
    ext = ax.get_window_extent()
    frame = (ext.x0 * scale, ext.y0 * scale, ext.x1 * scale, ext.y1 * scale)
    order = sorted(range(len(pts)), key=lambda i: (disp[i][0], disp[i][1]))
    for i in order:
        label = labels[i]
        w, h = 0.56 * fontsize * len(label), fontsize * 1.05
        dx, dy = disp[i]
        best = None
        for rank, (ox, oy) in enumerate(_OFFSETS):
            x0 = dx + ox if ox > 0 else dx + ox - w
            box = (x0, dy + oy, x0 + w, dy + oy + h)
            inside = frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1] and box[3] <= frame[3]
            cost = (sum(_overlap(box, b) for b in boxes) + (0 if inside else 100), rank)
            if best is None or cost < best[0]:
                best = (cost, (ox, oy))
            if cost[0] == 0:
                break
        chosen = best[1]
        ox, oy = chosen
        x0 = dx + ox if ox > 0 else dx + ox - w
        boxes.append((x0, dy + oy, x0 + w, dy + oy + h))
        ax.annotate(label, pts[i], xytext=(ox, oy), textcoords="offset points", fontsize=fontsize,
                    ha="left" if ox > 0 else "right", va="bottom", color=colors[i],
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#999999"} if abs(oy) > 12 else None)


def _overlap(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])
