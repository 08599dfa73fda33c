"""``hrbench doctor``: the command to run first on a new machine or cluster node (:mod:`hrbench.doctor`)."""

from __future__ import annotations

import typer
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import make_console, parse_input, print_json
from hrbench.cli.root import app
from hrbench.threads import configure_threads

STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


@app.command("doctor")
def doctor_cmd(
    device: str = options.device_option(),
    arch: str = typer.Option("lite18", "--arch", help="registered architecture to exercise"),
    input_size: str = options.input_option("64x64 on CPU, 256x192 on CUDA"),
    batch: int = options.batch_option(None, "per training step (default: 4 on CPU, 32 on CUDA)"),
    steps: int = typer.Option(8, "--steps", help="training steps per precision"),
    threads: str = options.threads_option(),
    as_json: bool = options.json_option("the report"),
) -> int:
    """Check every training/evaluation path of a device on synthetic data: fp32 / bf16 / fp16+GradScaler
    steps, channels-last, --gpu-aug, evaluation with flip test, compiled and CUDA-graph inference, DDP.
    Prints a pass/fail table with timings; exits 1 when a check fails."""
    from hrbench.doctor import Check, DoctorReport, run_doctor

    configure_threads(threads)
    hw = parse_input(input_size) if input_size else None
    err = make_console(stderr=True)
    report: DoctorReport | None = None
    with err.status("hrbench doctor: preparing synthetic data") as status:
        for item in run_doctor(device, arch, hw, batch, steps):
            if isinstance(item, Check):
                if not as_json:
                    err.print(f"[{STYLE[item.status]}]{item.status:4s}[/] {item.name} ({item.seconds:.1f}s)")
                status.update(f"hrbench doctor: {item.name} done")
            else:
                report = item
    assert report is not None
    if as_json:
        print_json(report.to_dict())
    else:
        table = Table(title=f"hrbench doctor: {report.arch} {report.input} on {report.device} (torch {report.torch})")
        for col in ("check", "result", "seconds", "detail"):
            table.add_column(col, justify="right" if col == "seconds" else "left")
        for c in report.checks:
            table.add_row(c.name, f"[{STYLE[c.status]}]{c.status}[/]", f"{c.seconds:.1f}", c.detail)
        make_console().print(table)
    return 0 if report.ok else 1
