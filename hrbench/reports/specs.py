"""One :class:`TableSpec` per printed table or figure of the three papers (Lite-HRNet, Dite-HRNet,
DPN slides): which ``reported.csv`` rows it holds, how it is rebuilt (``kind``) and its notes."""

from __future__ import annotations

import dataclasses

from hrbench.reference import giga_of


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One printed table (or figure) of a paper and how to rebuild it.

    ``kind``: 'results' (printed rows + measurements), 'architecture' (from configs),
    'formula' (Lite-HRNet Table 2), 'figure' (the points of a printed plot).
    """

    id: str
    paper: str
    title: str
    kind: str = "results"
    parts: tuple[tuple[str, str], ...] = ()  # (source, table) of reported.csv
    truncates: bool = False  # the source truncates its complexity figures (checked on its other rows)
    models: tuple[tuple[str, str], ...] = ()  # architecture tables: (source, printed name)
    arch_input: str = ""
    arch_dataset: str = ""
    arch_published: tuple[tuple[str, str, str], ...] = ()  # (printed name, params_M, mflops)
    note: str = ""

    @property
    def giga(self) -> int:
        """Printed "GFLOPs" = paper-convention MFLOPs / giga (Dite-HRNet Table 5 divides by 1000)."""
        return giga_of(*self.parts[0]) if self.parts else 1024


PAPERS = {"lite": "Lite-HRNet (Yu et al., CVPR 2021)", "dite": "Dite-HRNet (Li et al., IJCAI 2022)",
          "dpn": "DPN, Dilation Pyramid Net (Liu & Guan, slides)",
          "rtmpose": "RTMPose (Jiang et al., 2023; mmpose projects/rtmpose README)"}

TABLES: tuple[TableSpec, ...] = (
    TableSpec("lite-T1", "lite", "Lite-HRNet Table 1: structure of Lite-HRNet-18/30", "architecture",
              parts=(("lite", "T1"),), models=(("lite", "Lite-HRNet-18"), ("lite", "Lite-HRNet-30")),
              arch_input="256x256", arch_dataset="mpii",
              note="Printed FLOPs are at 256x256 (MPII, K=16), torchstat, binary M."),
    TableSpec("lite-T2", "lite", "Lite-HRNet Table 2: 1x1 convolution vs conditional channel weight", "formula",
              note="Recomputed from the printed formulas for the printed example shapes "
                   "X1 = 64x64x40, X2 = 32x32x80; FLOPs in binary M (2^20), as the paper prints them."),
    TableSpec("lite-T3", "lite", "Lite-HRNet Table 3: COCO val2017", parts=(("lite", "T3"),)),
    TableSpec("lite-T4", "lite", "Lite-HRNet Table 4: COCO test-dev2017", parts=(("lite", "T4"),)),
    TableSpec("lite-T5", "lite", "Lite-HRNet Table 5: MPII val (FLOPs at 256x256)", parts=(("lite", "T5"),)),
    TableSpec("lite-F4", "lite", "Lite-HRNet Figure 4: complexity vs accuracy (COCO val 256x192, MPII val)",
              "figure", parts=(("lite", "F4a"), ("lite", "F4b")),
              note="The figure's points: MBV2, SFV2, SHR, WLH-18, LH-18, LH-30; WLH-18's GFLOPs are printed only "
                   "in the figure, the others come from Tables 3 and 5. reported.csv gives WLH-18 0.31 GFLOPs on "
                   "COCO; the figure's label sequence (1.48, 1.28, 0.54, 0.3, 0.2, 0.31 for MBV2, SFV2, SHR, WLH-18, "
                   "LH-18, LH-30) reads as 0.3, which 311.1 MFLOPs / 1024 = 0.304 also gives."),
    TableSpec("lite-T6", "lite", "Lite-HRNet Table 6: conditional channel weight vs 1x1 convolutions",
              parts=(("lite", "T6"),)),
    TableSpec("lite-T7", "lite", "Lite-HRNet Table 7: spatial and multi-resolution weights",
              parts=(("lite", "T7"),)),
    TableSpec("lite-readme", "lite", "Lite-HRNet official README: COCO val2017 and MPII val",
              parts=(("lite-readme", "R1"), ("lite-readme", "R2"))),
    TableSpec("dite-T1", "dite", "Dite-HRNet Table 1: structure of Dite-HRNet-18/30", "architecture",
              models=(("dite", "Dite-HRNet-18"), ("dite", "Dite-HRNet-30")), arch_input="256x192",
              arch_dataset="coco",
              arch_published=(("Dite-HRNet-18", "1.1", "209.8"), ("Dite-HRNet-30", "1.8", "329.8")), truncates=True,
              note="Published params/MFLOPs at 256x192 from the official README (the table prints none); the "
                   "Dite-HRNet sources truncate (1,186,933 parameters print as 1.1)."),
    TableSpec("dite-T2", "dite", "Dite-HRNet Table 2: COCO val2017", parts=(("dite", "T2"),), truncates=True,
              note="This paper prints GFLOPs truncated to one decimal (its MobileNetV2 1.48 -> 1.4, "
                   "ShuffleNetV2 1.28 -> 1.2, 2.87 -> 2.8 against Lite-HRNet Table 3); such cells are marked 'trunc'."),
    TableSpec("dite-T3", "dite", "Dite-HRNet Table 3: COCO test-dev2017", parts=(("dite", "T3"),), truncates=True,
              note="GFLOPs truncated to one decimal by the paper (see Table 2)."),
    TableSpec("dite-T4", "dite", "Dite-HRNet Table 4: MPII val", parts=(("dite", "T4"),), truncates=True,
              note="GFLOPs truncated to one decimal by the paper (MobileNetV2 1.97 -> 1.9)."),
    TableSpec("dite-T5", "dite", "Dite-HRNet Table 5: groups G x kernels N in DSC (Dite-HRNet-18, COCO 256x192)",
              parts=(("dite", "T5"),), truncates=True,
              note="G and N listed from the highest- to the lowest-resolution branch; the printed GFLOPs are "
                   "the paper-convention MFLOPs / 1000, truncated to two decimals (G=4211, N=1244: 240.30 -> "
                   "0.24, where / 1024 would give 0.23). Printed params are rounded inconsistently: "
                   "G=1124, N=4444 prints 1.2 for 1.306M."),
    TableSpec("dite-T6", "dite", "Dite-HRNet Table 6: ACM and DSC ablation", parts=(("dite", "T6"),), truncates=True,
              note="The Dite-HRNet sources truncate their figures (1,186,933 parameters print as 1.1)."),
    TableSpec("dite-readme", "dite", "Dite-HRNet official README: COCO val2017 and MPII val",
              parts=(("dite-readme", "R1"), ("dite-readme", "R2")), truncates=True,
              note="The README truncates (Dite-HRNet-18: 1,186,933 parameters print as 1.1)."),
    TableSpec("rtmpose-readme", "rtmpose", "RTMPose README: COCO val2017 (AIC+COCO training, 256x192)",
              parts=(("rtmpose-readme", "R1"),),
              note="GFLOPs are mmcv's decimal figures (count / 1e9: paper-convention MFLOPs / 953.67), the counter "
                   "mmpose's get_flops.py used until v1.0.0 (convention mmcv-flops)."),
    TableSpec("dpn-arch", "dpn", "DPN slide table: architecture of DPN4_32 / DPN4_64", "architecture",
              models=(("dpn", "DPN4_32"), ("dpn", "DPN4_64")), arch_input="256x192", arch_dataset="coco",
              arch_published=(("DPN4_32", "0.7", ""), ("DPN4_64", "3.3", "")),
              note="The slide table is OCR-garbled; hrbench's reconstruction is described in its model cards."),
    TableSpec("dpn-T2", "dpn", "DPN Table II: DPM vs normal convolution (COCO val2017)", parts=(("dpn", "T2"),)),
    TableSpec("dpn-T3", "dpn", "DPN Table III: DPM vs stacked dilated convolution D=k", parts=(("dpn", "T3"),)),
    TableSpec("dpn-T4", "dpn", "DPN Table IV: DPM at 64x48 vs 32x24", parts=(("dpn", "T4"),)),
    TableSpec("dpn-T5", "dpn", "DPN Table V: reversed DPM (RDPM) vs DPM", parts=(("dpn", "T5"),)),
    TableSpec("dpn-T6", "dpn", "DPN Table VI: COCO val2017 state of the art", parts=(("dpn", "T6"),)),
    TableSpec("dpn-T7", "dpn", "DPN Table VII: MPII test", parts=(("dpn", "T7"),)),
)


def get_spec(table_id: str) -> TableSpec:
    for spec in TABLES:
        if spec.id == table_id:
            return spec
    raise KeyError(table_id)
