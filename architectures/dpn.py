"""DPN (Dilation Pyramid Net, Liu & Guan slides): DPN{1..4}_{32,64}, high-resolution DPN{n}_64_hr,
DPN2_hrnet, and the slides' ablation grids (Tables II-V). All reconstructed: no code exists."""

from __future__ import annotations

import dataclasses

from hrbench.architectures.hrnet import hrnet_recipe

from hrbench.models.dpn import DPNConfig
from hrbench.registry import Grid, GridCell, Recipe, register_grid, register_model

_COMMON = """
Reconstructed from the slides' garbled architecture table (no official code): 7x7/2 stem + max-pool,
ResNet-50 layer1 at 64x48; {conv2}; {n} DPM(s) at {res}, each 6 residual bottlenecks {c4}-{c}-{c4} with
3x3 dilations 32,16,8,4,2,1 (d_i = 2^(6-i), receptive field 127); {tail}; 1x1 head 4C->K.
Reading A of the reconstruction (default, variant=fitted): one plain bottleneck after the DPMs, which
reproduces all 13 published complexity figures; variant=literal drops it (the table as printed;
7 of 13). "4 DPMs x 6 layers" cannot be told from "6 x 4" by counts; the slides say DPM x4 and x6.
"GFLOPs" = conv+linear multiply-accumulates / 2^30 (HRNet's get_model_summary), as the slides.
"""


def dpn_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """No DPN code exists: HRNet's Adam recipe (:func:`hrbench.architectures.hrnet.hrnet_recipe`)."""
    return dataclasses.replace(hrnet_recipe(dataset, input_hw), family="dpn")


def _register(name: str, cfg: dict, reported: tuple[tuple[str, str], ...], notes: str) -> None:
    def variant() -> DPNConfig:
        return DPNConfig(**cfg)

    variant.__name__ = name
    register_model(name, paper="dpn", recipe=dpn_recipe, convention="hrnet-summary", reported=reported, notes=notes,
                   tags=("dpn", "reconstructed"))(variant)


for _n in (1, 2, 3, 4):
    for _c in (32, 64):
        _conv2 = ("ResNet-50 layer2 (stride 2) + 1x1 conv 512->256 to 32x24" if _c == 64
                  else "one 1x1/2 conv 256->128 to 32x24")
        _rep = [("dpn", f"DPN{_n}_{_c} (DPM)")]
        if _c == 64:
            _rep.append(("dpn", f"DPN{_n}_64 (DPM at 32x24)"))
        if _n == 4:
            _rep.append(("dpn", f"DPN4_{_c}"))
        _register(f"dpn{_n}_{_c}", {"width": _c, "num_dpms": _n, "conv2": "layer2" if _c == 64 else "conv1x1"},
                  tuple(_rep),
                  _COMMON.format(conv2=_conv2, n=_n, res="32x24", c=_c, c4=4 * _c, tail="x2 bilinear upsampling"))
    _register(f"dpn{_n}_64_hr", {"width": 64, "num_dpms": _n, "conv2": "layer2", "dpm_stride": 4},
              (("dpn", f"DPN{_n}_64 (DPM at 64x48)"),),
              "High-resolution DPN of Table IV (DPMs at 64x48, trained 210 epochs)."
              + _COMMON.format(conv2="ResNet-50 layer2 unstrided + 1x1 conv 512->256", n=_n, res="64x48",
                               c=64, c4=256, tail="no upsampling"))


@register_model(
    "dpn2_hrnet",
    paper="dpn",
    recipe=dpn_recipe,
    convention="hrnet-summary",
    reported=(("dpn", "DPN2_hrnet"),),
    notes="""
DPN2_hrnet (slides Table VI: HRNet-W32 with two DPMs, 29.5M / 7.8 GFLOPs). Where the DPMs attach is
not stated; reconstructed as: HRNet-W32's 1/4 branch (32 ch) -> 1x1/2 conv 32->256 + BN + ReLU ->
two DPMs (C=64, dilations 32..1) -> one plain bottleneck -> x2 bilinear upsampling -> 1x1 head
(29.464M / 7.784, the same tail as reading A of DPN). The other fitting reading, a 3x3/2 entry conv
and no plain bottleneck (29.459M / 7.781), is `--set conv2=conv3x3 --set variant=literal`.
""",
    tags=("dpn", "reconstructed"),
)
def dpn2_hrnet() -> DPNConfig:
    return DPNConfig(width=64, num_dpms=2, trunk="hrnet_w32", conv2="conv1x1")


# --- ablation grids (slides Tables II-V), matched to reported.csv's `dpn` rows ------------------
register_grid(Grid(
    name="dpn-table2", source="dpn", table="T2",
    description="DPM vs normal convolution (all dilations 1) for DPN1..4_64; same params and FLOPs",
    cells=tuple(
        GridCell({"model": f"DPN{n}_64", "dilation": label, "reported": f"DPN{n}_64 ({tag})"}, f"dpn{n}_64",
                 overrides)
        for label, tag, overrides in (("DPM", "DPM", {}), ("Normal", "normal", {"dilation": "normal"}))
        for n in (1, 2, 3, 4)),
))

register_grid(Grid(
    name="dpn-table3", source="dpn", table="T3",
    description="DPM vs stacked dilated convolution with a constant dilation D for DPN1_32 and DPN4_32",
    cells=tuple(
        GridCell({"model": f"DPN{n}_32", "dilation": label, "reported": f"DPN{n}_32 ({label})"}, f"dpn{n}_32",
                 {} if k is None else {"dilation": f"const:{k}"})
        for n in (1, 4)
        for label, k in (("DPM", None), ("D=1", 1), ("D=2", 2), ("D=4", 4), ("D=6", 6), ("D=8", 8))),
))

register_grid(Grid(
    name="dpn-table4", source="dpn", table="T4",
    description="DPM input resolution: 64x48 (high-resolution, 210 epochs) vs 32x24 (140 epochs), DPN1..4_64",
    cells=tuple(
        GridCell({"model": f"DPN{n}_64", "resolution": res, "epochs": epochs,
                  "reported": f"DPN{n}_64 (DPM at {res})"}, model, {}, epochs=epochs)
        for res, epochs, suffix in (("64x48", 210, "_hr"), ("32x24", 140, ""))
        for n in (1, 2, 3, 4)
        for model in (f"dpn{n}_64{suffix}",)),
))

register_grid(Grid(
    name="dpn-table5", source="dpn", table="T5",
    description="DPM (dilations 2^(N-i)) vs reversed DPM (RDPM, 2^(i-1)) for DPN1..4_32",
    cells=tuple(
        GridCell({"model": f"DPN{n}_32", "dilation": label, "reported": f"DPN{n}_32 ({label})"}, f"dpn{n}_32",
                 overrides)
        for label, overrides in (("DPM", {}), ("RDPM", {"dilation": "rdpm"}))
        for n in (1, 2, 3, 4)),
))
