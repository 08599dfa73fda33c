"""Paper tables and plots regenerated from the registry: published numbers beside hrbench's own
measurements (``hrbench tables``, :func:`generate_reports`).

- :mod:`hrbench.reports.specs`: one spec per table/figure of the three papers.
- :mod:`hrbench.reports.targets`: printed rows -> registry entries / ablation-grid cells.
- :mod:`hrbench.reports.local_runs`: finished local runs (the accuracy columns).
- :mod:`hrbench.reports.tables`: the builders that measure every row and check every complexity cell
  against the printed figure.
- :mod:`hrbench.reports.render`: deterministic Markdown / CSV and the index; :mod:`hrbench.reports.latex`:
  booktabs LaTeX (``--format ...,tex``).
- :mod:`hrbench.reports.plots` (+ :mod:`~hrbench.reports.ablation_plots`, :mod:`~hrbench.reports.plot_base`):
  deterministic PNG + SVG plots (matplotlib Agg).
- :mod:`hrbench.reports.bench`: the machine-dependent latency report (``hrbench tables --bench``).
- :mod:`hrbench.reports.overlay`: drawing for ``hrbench predict`` and ``hrbench data show``.
- :mod:`hrbench.reports.run_table`, :mod:`hrbench.reports.curves`: ``hrbench runs`` (the runs registry
  at a glance) and ``hrbench runs plot`` (learning curves).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: ``hrbench tables --format`` values; tables are written in each, plots as PNG + SVG (+ PDF with ``tex``).
FORMATS = ("md", "csv", "tex")
DEFAULT_FORMATS = ("md", "csv")

#: Plots shown under each table's Markdown (file stems in ``plots/``).
TABLE_PLOTS = {
    "lite-T3": ("coco-256x192-ap-vs-gflops", "coco-384x288-ap-vs-gflops"),
    "lite-T5": ("mpii-256x256-pckh-vs-gflops",),
    "lite-F4": ("lite-F4",),
    "dite-T2": ("coco-256x192-ap-vs-gflops", "coco-384x288-ap-vs-gflops"),
    "dite-T4": ("mpii-256x256-pckh-vs-gflops",),
    "dite-T5": ("dite-T5-heatmaps",),
    "dpn-T2": ("dpn-T2-dpm-vs-normal",),
    "dpn-T3": ("dpn-T3-dilation",),
    "dpn-T4": ("dpn-T4-resolution",),
    "dpn-T5": ("dpn-T5-rdpm",),
    "dpn-T6": ("coco-256x192-ap-vs-gflops",),
}


@dataclasses.dataclass
class ReportResult:
    out_dir: Path
    files: list[Path]
    counts: dict[str, int]
    disagreeing: list[Any]
    tables: list[Any]
    notes: list[str] = dataclasses.field(default_factory=list)


def generate_reports(out_dir: str | Path = "reports", runs_dir: str | Path | None = "runs",
                     formats: tuple[str, ...] = DEFAULT_FORMATS, measurer: Callable | None = None,
                     progress: Callable[[str], None] | None = None,
                     table_ids: tuple[str, ...] | None = None) -> ReportResult:
    """Rebuild every table (in each of ``formats``: :data:`FORMATS`), every plot (PNG + SVG, and PDF
    with ``tex``) and ``README.md``.

    Everything is built aside and moved in through :func:`hrbench.manifest.commit`: hrbench replaces
    and removes (stale ones under ``tables/`` and ``plots/``) only the files its manifest says it wrote,
    refuses a foreign file at an output path (before the work where the name is known) and keeps the
    user's other files; ``bench/`` (machine-dependent, ``hrbench tables --bench``) is left alone.
    """
    from hrbench.complexity.measurer import default_measurer
    from hrbench.manifest import commit, refuse_foreign, staging
    from hrbench.reports import latex, render
    from hrbench.reports import plots as plot_mod
    from hrbench.reports.local_runs import load_runs
    from hrbench.reports.specs import TABLES
    from hrbench.reports.tables import Context, build_table

    out = Path(out_dir)
    specs = [s for s in TABLES if table_ids is None or s.id in table_ids]
    plot_formats = ("png", "svg", "pdf") if "tex" in formats else ("png", "svg")
    stems = {n for s in specs for n in TABLE_PLOTS.get(s.id, ())}
    refuse_foreign(out, sorted({"README.md", *(f"tables/{s.id}.{e}" for s in specs for e in formats),
                                *(f"plots/{n}.{e}" for n in stems for e in plot_formats)}))
    ctx = Context(measurer=measurer or default_measurer, runs=load_runs(runs_dir))
    built = []
    for spec in specs:
        if progress:
            progress(spec.id)
        built.append(build_table(spec, ctx))
    if progress:
        progress("plots")
    with staging(out) as stage:
        tdir = stage / "tables"
        plots = plot_mod.make_plots({t.spec.id: t for t in built}, stage / "plots", plot_formats)
        made = {name for name, _ in plots}
        for t in built:
            files = {}
            if "md" in formats:
                files[tdir / f"{t.spec.id}.md"] = render.table_markdown(
                    t, [p for p in TABLE_PLOTS.get(t.spec.id, ()) if p in made])
            if "csv" in formats:
                files[tdir / f"{t.spec.id}.csv"] = render.to_csv(*render.csv_for(t))
            if "tex" in formats:
                files[tdir / f"{t.spec.id}.tex"] = latex.to_latex(t)
            for path, text in files.items():
                render.write_text(path, text)
        not_held = sum(1 for t in built for r in t.rows if r.target is None and not r.scope)
        outside = sum(1 for t in built for r in t.rows if r.target is None and r.scope)
        render.write_text(stage / "README.md", render.index_markdown(built, plots, not_held, outside, formats))
        written = sorted(out / p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
        notes = commit(stage, out, managed=("tables", "plots"))
    return ReportResult(out, written, render.summary_counts(built), render.disagreeing(built), built, notes)
