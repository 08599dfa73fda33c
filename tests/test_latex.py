"""Paper-ready tables (issue 24): ``hrbench tables --format md,csv,tex`` writes one booktabs tabular per
table with the Markdown's cells, LaTeX specials escaped, ✓/✗ as symbols LaTeX knows, plots also as PDF."""

from __future__ import annotations

import re
import zlib

import pytest

from hrbench.cli import main
from hrbench.complexity.measurer import Measurement
from hrbench.reports import generate_reports
from hrbench.reports.latex import standalone, tex_cell, tex_escape

IDS = ("lite-T1", "lite-T2", "lite-T3", "dite-T5")  # architecture, formula, results (marks), Table 5


def _measurer(model, overrides, input_hw, k):  # deterministic, mostly disagreeing: both marks appear
    h = zlib.crc32(f"{model}{sorted(overrides.items())}{input_hw}{k}".encode())
    return Measurement(1_000_000 + h % 500_000, 200 + (h % 1000) / 10, 200_000_000 + h % 10_000)


def test_specials_are_escaped():
    assert tex_escape(r"a_b 5% x&y #1 $2 {c} ~ ^ \ ") == (
        r"a\_b 5\% x\&y \#1 \$2 \{c\} \textasciitilde{} \textasciicircum{} \textbackslash{} ")
    assert tex_cell("**1.234 ✗**") == r"\textbf{1.234 $\times$}"
    assert tex_cell("Lite-HRNet-18 (`litehrnet_18`)") == r"Lite-HRNet-18 (\texttt{litehrnet\_18})"
    assert tex_cell("205.23 ✓ (trunc.)") == r"205.23 $\checkmark$ (trunc.)"


def _md_rows(md: str) -> list[list[str]]:
    """Cells of the first Markdown table of a generated table file (header, then body rows)."""
    lines = md.split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| "))
    rows = []
    for ln in lines[start:]:
        if not ln.startswith("|"):
            break
        if ln.startswith("|---"):
            continue
        cells = re.split(r"(?<!\\)\|", ln.strip())[1:-1]
        rows.append([c.strip().replace("\\|", "|") for c in cells])
    return rows


_UNTEX = [(r"\textbackslash{}", "\\"), (r"\textasciitilde{}", "~"), (r"\textasciicircum{}", "^"),
          (r"$\checkmark$", "✓"), (r"$\times$", "✗"), (r"\_", "_"), (r"\%", "%"), (r"\&", "&"), (r"\#", "#"),
          (r"\$", "$"), (r"\{", "{"), (r"\}", "}")]


def _untex(cell: str) -> str:
    """A LaTeX cell back to Markdown, written here independently of the renderer."""
    cell = re.sub(r"\\textbf\{(.*)\}", r"**\1**", cell)
    cell = re.sub(r"\\texttt\{([^}]*)\}", r"`\1`", cell)
    for tex, ch in _UNTEX:
        cell = cell.replace(tex, ch)
    return cell


def _tex_rows(tex: str) -> list[list[str]]:
    body = tex.split("\\midrule\n")
    head = body[0].split("\\toprule\n")[1]
    rows = [head.strip()] + body[1].split("\\bottomrule")[0].strip().split("\n")
    out = []
    for row in rows:
        assert row.endswith(r" \\"), row
        out.append([_untex(c) for c in re.split(r"(?<!\\)&", row[:-3])])
    return [[c.strip() for c in r] for r in out]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The same tables written with the default formats (``a``) and with md,csv,tex (``b``)."""
    root = tmp_path_factory.mktemp("latex")
    a = generate_reports(root / "a", runs_dir=None, measurer=_measurer, table_ids=IDS)
    b = generate_reports(root / "b", runs_dir=None, formats=("md", "csv", "tex"), measurer=_measurer, table_ids=IDS)
    return root, a, b


def test_tex_has_one_booktabs_tabular_per_table_with_the_markdown_cells(reports):
    root, _, res = reports
    tmp_path = root / "b"
    tables = tmp_path / "tables"
    marks = set()
    for tid in IDS:
        tex = (tables / f"{tid}.tex").read_text()
        for command in (r"\begin{tabular}", r"\end{tabular}", r"\toprule", r"\midrule", r"\bottomrule"):
            assert tex.count(command) == 1, (tid, command)
        comment, *rest = tex.split("\n")
        assert comment.startswith("% ") and "booktabs,amssymb" in comment
        code = "\n".join(rest)
        assert not re.search(r"(?<!\\)[_%#]", code), tid  # every _ % # escaped (the comment line aside)
        md = _md_rows((tables / f"{tid}.md").read_text())
        rows = _tex_rows(code)
        assert len(rows) == len(md) and all(len(r) == len(md[0]) for r in rows), tid  # & only between cells
        normalise = str.maketrans({"×": "✗"})  # both become $\times$
        assert rows == [[c.translate(normalise) for c in r] for r in md], tid
        marks |= {m for r in md for c in r for m in ("✓", "✗") if m in c}
        spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", code).group(1)
        assert spec == "l" + "c" * (len(md[0]) - 1)
    assert marks == {"✓", "✗"}  # both symbols were exercised
    assr = (tables / "lite-T3.tex").read_text()
    assert r"litehrnet\_18" in assr and r"\#Params" in assr
    pdfs = sorted(p.name for p in (tmp_path / "plots").glob("*.pdf"))
    pngs = sorted(p.name[:-4] + ".pdf" for p in (tmp_path / "plots").glob("*.png"))
    assert pdfs == pngs and pdfs and all((tmp_path / "plots" / p).read_bytes().startswith(b"%PDF") for p in pdfs)
    index = (tmp_path / "README.md").read_text()
    assert "[tex](tables/lite-T3.tex)" in index and "[pdf](plots/" in index
    assert set(res.files) >= {tables / f"{t}.tex" for t in IDS}


def test_default_formats_write_no_tex_and_the_same_markdown_and_csv(reports):
    tmp_path, a, _ = reports
    assert not list((tmp_path / "a").rglob("*.tex")) and not list((tmp_path / "a").rglob("*.pdf"))
    for path in a.files:
        rel = path.relative_to(tmp_path / "a")
        if path.suffix in (".md", ".csv", ".png", ".svg") and rel.name != "README.md":
            assert path.read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_standalone_wraps_a_fragment():
    doc = standalone("% t\n\\begin{tabular}{l}\nx \\\\\n\\end{tabular}\n")
    assert doc.startswith("\\documentclass{article}") and "\\usepackage{booktabs}" in doc
    assert "\\usepackage{amssymb}" in doc and doc.rstrip().endswith("\\end{document}")


@pytest.mark.parametrize("argv, message", [
    (["--format", "tex"], "md is always written"),
    (["--format", "md,xls"], "unknown --format 'xls'"),
    (["--latex", "--format", "md,csv"], "--latex is shorthand"),
])
def test_tables_format_errors(tmp_path, capsys, argv, message):
    assert main(["tables", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrbench: error: ") and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r").exists()
