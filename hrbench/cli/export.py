"""``hrbench export``: the eval model as ONNX, checked against PyTorch with ONNX Runtime before it is written."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from hrbench.cli import options
from hrbench.cli.options import make_console, parse_input, parse_overrides, print_json
from hrbench.cli.root import app
from hrbench.errors import HrbenchError


def parse_batch(text: str) -> int | str:
    """``--batch``: a positive integer or ``dynamic``."""
    if text.strip().lower() == "dynamic":
        return "dynamic"
    if not text.strip().isdigit() or int(text) < 1:
        raise HrbenchError(f"invalid --batch {text!r}: a positive integer or 'dynamic'")
    return int(text)


@app.command("export")
def export_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias"),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="hrbench or official checkpoint (default: fresh "
                                    "weights)"),
    fmt: str = typer.Option(..., "--format", help="onnx"),
    input_size: str = options.input_option("the checkpoint's, else the dataset's"),
    batch: str = options.batch_option("1", "N, or 'dynamic' (not for dynamic-kernel Dite models)"),
    dataset: str = options.dataset_option(shown="the checkpoint's, else coco"),
    sets: list[str] = typer.Option(None, "--set", help="KEY=VALUE model hyper-parameter"),
    out: Path = options.out_option(None, "file (default: <arch>_<HxW>_b<N>.onnx)"),
    exporter: str = typer.Option("torchscript", "--exporter", help="torchscript (seconds) | dynamo (minutes)"),
    no_fold: bool = typer.Option(False, "--no-fold-bn", help="keep every BatchNorm (default: fold the exact ones)"),
    as_json: bool = options.json_option("the export report"),
) -> None:
    """Export ARCH (eval mode, BatchNorms folded where exact) and check ONNX Runtime against PyTorch
    (max abs difference <= 1e-4 in fp32) before writing the file; a failing file is never written."""
    from hrbench.factory import restore_model
    from hrbench.fsutil import check_output_dir, check_output_file
    from hrbench.speed.onnx import EXPORTERS, FORMATS, export_onnx, require_onnx

    if fmt not in FORMATS:
        raise HrbenchError(f"unknown --format {fmt!r}: choose from {', '.join(FORMATS)}")
    if exporter not in EXPORTERS:
        raise HrbenchError(f"unknown --exporter {exporter!r}: choose from {', '.join(EXPORTERS)}")
    b = parse_batch(batch)
    hw = parse_input(input_size) if input_size else None
    # before the export (seconds to minutes): a destination that is not a regular file, or a folder that
    # cannot be written (read-only mount, /proc), is refused now
    check_output_file(out) if out is not None else check_output_dir(Path.cwd())
    require_onnx()
    lm = restore_model(arch, checkpoint, parse_overrides(sets) or None, dataset, hw)
    h, w = lm.input_hw
    path = check_output_file(out or Path(f"{lm.arch}_{h}x{w}_b{b}.onnx"))
    t = time.perf_counter()
    status = f"exporting {lm.arch} ({exporter} exporter, {h}x{w}, batch {b}) and checking it with ONNX Runtime ..."
    with make_console(stderr=True).status(status, spinner="dots"):
        report = export_onnx(lm.model, path, lm.input_hw, b, exporter=exporter, fold_bn=not no_fold, arch=lm.arch)
    d = report.to_dict()
    d.update({"checkpoint": lm.source, "dataset": lm.dataset, "total_s": time.perf_counter() - t})
    if as_json:
        return print_json(d)
    print(f"wrote {d['path']} ({d['size_bytes'] / 2**20:.1f} MiB): {d['arch']} {d['input']} batch {d['batch']}, "
          f"{d['exporter']} exporter, opset {d['opset']}")
    print(f"  BatchNorms folded {d['folded_bn']}, kept {d['kept_bn']} (after dynamic kernels or not after a conv); "
          f"dynamic kernels made static {d['static_dka']}")
    if d.get("forms"):
        print("  exact graph rewrites: " + ", ".join(f"{k} x{v}" for k, v in d["forms"].items()))
    print(f"  parity: max |ONNX Runtime - PyTorch| = {d['max_abs_diff']:.2e} = {d['max_rel_diff']:.1e} of the "
          f"outputs' {d['output_max']:.3g} <= {d['tolerance']:g} (fp32, batch "
          f"{', '.join(map(str, d['checked_batches']))})")
    print(f"  time: export {d['export_s']:.1f} s, check {d['check_s']:.1f} s, total {d['total_s']:.1f} s")
