"""The public FINN builds whose report files are copied in ``data/public-builds/<id>/`` (each
folder's SOURCE.md names repository, commit and path; ``public-builds/README.md`` lists them), as
records, and their files laid out as FINN's output folder, so they go through the same reader as
any finished build."""

import shutil
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.references import DATA

PUBLIC_BUILDS_DIR = DATA / "public-builds"
# file in the copied folder -> where FINN's build writes it in its output folder
FINN_LAYOUT = {"post_synth_resources.json": "report/post_synth_resources.json",
               "ooc_synth_and_timing.json": "report/ooc_synth_and_timing.json",
               "estimate_layer_resources.json": "report/estimate_layer_resources.json",
               "estimate_layer_cycles.json": "report/estimate_layer_cycles.json",
               "estimate_network_performance.json": "report/estimate_network_performance.json",
               "final_hw_config.json": "final_hw_config.json",
               "auto_folding_config.json": "auto_folding_config.json"}


@dataclass(frozen=True)
class PublicBuild:
    """One public build (figures as public-builds/README.md states them)."""

    id: str
    network: str
    part: str
    board: str | None  # pynqrepro's board of the part (None: no board here has it)
    device: dict  # the part's resources (LUT, BRAM_18K, DSP): whether the design fits its own device
    tools: str  # FINN and Vivado versions
    folding: str  # the folding file the build used
    source: str


Z020 = {"LUT": 53_200, "BRAM_18K": 280, "DSP": 220}  # AMD DS190
ZU7EV = {"LUT": 230_400, "BRAM_18K": 624, "DSP": 1_728}  # AMD DS891
S25 = {"LUT": 14_600, "BRAM_18K": 90, "DSP": 80}  # AMD DS180 (XC7S25: 14,600 LUT, 45 BRAM36, 80 DSP)
PUBLIC_BUILDS = (
    PublicBuild("A1", "CNV W1A1 (5 conv + 3 FC)", "xc7z020clg400-2", "pynq-z2", Z020,
                "FINN v0.10 dev, Vivado 2022.1", "custom_folding_config.json", "Ba1tu3han/Finn_Thesis @89b4c46"),
    PublicBuild("B1", "UNSW-NB15 MLP W2A2", "xc7z020clg400-1", "pynq-z1", Z020, "FINN v0.5b",
                "final_hw_config.json", "Xilinx/finn v0.5b cybersecurity notebook 3"),
    PublicBuild("B2", "UNSW-NB15 MLP W2A2", "xc7z020clg400-1", "pynq-z1", Z020, "FINN v0.7",
                "final_hw_config.json", "Xilinx/finn v0.7 cybersecurity notebook 3"),
    PublicBuild("D", "LPYOLO W8, acts 3-8 bit", "xc7z020clg400-1", "pynq-z2", Z020, "FINN >= v0.10, Vivado 2022.2",
                "auto_folding_config.json", "PozhilanKarthikeyan/Bharath_AI_SOC_Challenge_Submission @692330d"),
    PublicBuild("E1", "RadioML 1-D CNN W4A4", "xczu7ev-ffvc1156-2-e", "zcu104", ZU7EV,
                "RadioFINN (FINN v0.10.1 fork), Vivado 2024.1", "auto_folding_config.json",
                "UCdasec/RadioFINN @3b13d62"),
    PublicBuild("E2", "RadioML 1-D CNN W8A8", "xczu7ev-ffvc1156-2-e", "zcu104", ZU7EV,
                "RadioFINN (FINN v0.10.1 fork), Vivado 2024.1", "auto_folding_config.json",
                "UCdasec/RadioFINN @9ec21911"),
    PublicBuild("F", "DeepPiCarMicro-style CNN W4A4", "xc7s25csga225-1", None, S25, "FINN >= v0.10, Vivado 2024.2",
                "auto_folding_config.json", "tsopeter/753-FPGA @b79e8d9"),
)
# The study's four out-of-context runs (data/thesis-folding-results/<run>/, FINN v0.5b, Pynq-Z1): FINN's
# estimate per layer and the OOC result, no per-node rows; the 4-bit run needed 464 BRAM18 on a 280-BRAM18
# part, so it never fitted its device and sets no bound.
STUDY_RUNS_DIR = DATA / "thesis-folding-results"
STUDY_OOC_BUILDS = tuple(
    PublicBuild(f"study {bits}-bit {label}", f"CNV W{bits}A{bits}", "xc7z020clg400-1", "pynq-z1", Z020,
                "FINN v0.5b (the study's runs)", "", f"rbcarlos/Bachelor-Thesis, thesis-folding-results/{run}")
    for bits, label, run in (
        (1, "FINN default", "estimate_set_folding_default_1bit_nonpruned"),
        (1, "search 100%", "estimate_set_folding_exhaustive_no_pruning_100_budget_1bit_nonpruned"),
        (2, "search 85%", "estimate_set_folding_exhaustive_no_pruning_85_budget_prio_simd_2bit_nonpruned"),
        (4, "search 85%", "estimate_set_folding_exhaustive_no_pruning_85_budget_prio_simd_auto_ram_4bit_nonpruned")))

# C (hls4ml-finn-mlperftiny, CNV W1A1) has no report file (its resources are an image, transcribed in
# C/SOURCE.md) and no estimate: it cannot be read as a build nor predicted.


def lay_out(build: PublicBuild, dest: Path) -> Path:
    """Copy a public build's report files into ``dest/<id>/`` as FINN's output folder holds them."""
    out = Path(dest) / build.id.replace(" ", "_").replace("%", "")
    folder = STUDY_RUNS_DIR / build.source.rpartition("/")[2] if build in STUDY_OOC_BUILDS else PUBLIC_BUILDS_DIR / build.id
    for name, rel in FINN_LAYOUT.items():
        source = folder / name
        if source.is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / rel)
    if build.folding not in ("", "final_hw_config.json") and not (out / "auto_folding_config.json").exists():
        shutil.copyfile(PUBLIC_BUILDS_DIR / build.id / build.folding, out / "auto_folding_config.json")
    return out
