"""The experiments at paper scale on a machine without a GPU: what needs GPU training is marked
gpu at collection (so it skips with its reason before any work, or is deselected by -m "not gpu"),
a paper checkpoint already in the store lets the CPU stages run, a missing or corrupt CIFAR-10
archive is a skip naming the fix, and the paper dry run (--max-steps) runs the paper's code paths
on the CPU in minutes."""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cifar_archive import write_tiny_cifar

from pynqrepro.core.scale import get_scale
from pynqrepro.core.store import ArtifactStore
from pynqrepro.study import TABLES
from pynqrepro.training.recipes import recipe

REPO = Path(__file__).resolve().parents[1]
NO_GPU = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}


def experiments(tmp_path, *args) -> subprocess.CompletedProcess:
    """pytest on the repository's experiments at paper scale, with this test's store, data and reports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XILINX", "PYNQ_BOARD", "PYNQREPRO"))}
    command = [sys.executable, "-m", "pytest", "-c", "pyproject.toml", "-p", "no:cacheprovider", "-n", "0",
               "--scale", "paper", f"--store-dir={tmp_path / 'store'}", f"--data-dir={tmp_path / 'data'}",
               f"--reports-dir={tmp_path / 'reports'}", *args]
    return subprocess.run(command, cwd=REPO, env={**env, **NO_GPU}, capture_output=True, text=True, timeout=600)


def outcomes(tmp_path, *args) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """``experiments(...)`` and each test's outcome (node id -> passed / skipped / failed / error),
    read from pytest's JUnit XML rather than its summary line."""
    import xml.etree.ElementTree as ET

    report = tmp_path / "outcomes.xml"
    result = experiments(tmp_path, f"--junitxml={report}", *args)
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module, _, name = case.get("classname").replace(".", "/").rpartition("/")
        kinds = {child.tag for child in case} & {"skipped", "failure", "error"}
        outcome = {"failure": "failed"}.get(min(kinds), min(kinds)) if kinds else "passed"
        found[f"{module}/{name}.py::{case.get('name')}" if module else f"{name}.py::{case.get('name')}"] = outcome
    return result, found


def cache_paper_checkpoint(store_dir: Path, weight_bits: int, act_bits: int) -> None:
    """A store entry under the paper recipe's key, as if copied from a GPU host's store."""
    store = ArtifactStore(store_dir)
    store.get_or_build("train", recipe(get_scale("paper"), weight_bits, act_bits).to_dict(),
                       lambda out: (out / "result.json").write_text("{}"), code="pynqrepro.training.recipes")


def case_nodes(wanted) -> set[str]:
    nodes = set()
    for name in TABLES.values():
        module = importlib.import_module(name)
        nodes |= {f"{module.EXPERIMENT}[{case.id}]" for case in module.CASES if wanted(module, case)}
    return nodes


def collected(result) -> set[str]:
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_what_needs_a_paper_checkpoint_not_in_the_store_is_gpu_work(tmp_path):
    # every case that measures a trained CNV (calibration measures untrained ones: never GPU work), and
    # the design-space search, which fine-tunes candidates (GPU work at paper scale)
    everything = case_nodes(lambda module, case: case.cnv_bits is not None or module.TABLE == "design_space")
    assert collected(experiments(tmp_path, "--collect-only", "-q", "-m", "gpu")) == everything
    cache_paper_checkpoint(tmp_path / "store", 2, 2)
    cpu = collected(experiments(tmp_path, "--collect-only", "-q", "-m", "not gpu"))
    # every case measuring the cached 2w2a CNV, but those that fine-tune (GPU work at paper scale): pruning,
    # the design space and the pruned network's build
    assert cpu == case_nodes(lambda module, case: case.cnv_bits in ((2, 2), None)
                             and module.TABLE not in ("pruning", "design_space") and not getattr(case, "trains", False))
    assert {node.split("::")[0] for node in cpu} == {
        "experiments/test_calibration.py", "experiments/test_training.py", "experiments/test_finn_flow.py", "experiments/test_folding.py",
        "experiments/test_synthesis.py", "experiments/test_board.py"}


def test_collection_asks_the_store_once_per_cnv(tmp_path, monkeypatch):
    """24 folding cases measure 4 CNVs: 4 looks into the store, each case marked by its CNV's."""
    from pynqrepro.pytest_plugin import fixtures
    from pynqrepro.study import folding

    looks = []
    monkeypatch.setattr("pynqrepro.training.recipes.cached_checkpoint",
                        lambda store, scale, w, a: looks.append((w, a)) or ((w, a) == (2, 2) or None))
    config = SimpleNamespace(pynqrepro={"scale": get_scale("paper"), "store": ArtifactStore(tmp_path)})
    marks = {case.id: fixtures.gpu_marks(config, case, trains=False) for case in folding.CASES}
    assert sorted(looks) == sorted({case.cnv_bits for case in folding.CASES})
    assert all((marks[case.id] == []) == (case.bits == 2) for case in folding.CASES)


def skip_lines(result) -> dict[str, str]:
    """Short test summary: test node -> its skip reason."""
    lines = {}
    for line in result.stdout.splitlines():
        match = re.match(r"SKIPPED \[\d+\] (\S+?):\d+: (.*)", line)
        if match:
            lines[match.group(1)] = match.group(2)
    return lines


def test_paper_stages_skip_with_one_line_reasons_before_any_work(tmp_path):
    cache_paper_checkpoint(tmp_path / "store", 2, 2)
    (tmp_path / "data").mkdir()
    result, found = outcomes(tmp_path, "-rs", "experiments/test_training.py", "-k", "1w1a or 2w2a")
    assert found == {f"experiments/test_training.py::test_training[{bits}]": "skipped" for bits in ("1w1a", "2w2a")}, \
        result.stdout + result.stderr
    reasons = "\n".join(line for line in result.stdout.splitlines() if line.startswith("SKIPPED"))
    assert ("gpu: the paper-scale CNV W1A1 is not in the store yet (train it on a GPU host and copy its store, "
            "or use --executor slurm); needs a CUDA GPU: none is visible to torch") in reasons
    assert re.search(r"data: CIFAR-10 archive not found and download failed \(.*\): put cifar-10-python.tar.gz "
                     r"from https://\S+ into " + re.escape(str(tmp_path / "data")), reasons), reasons
    assert not list((tmp_path / "store" / "train").glob(".*.work*"))  # nothing started

    (tmp_path / "data" / "cifar-10-python.tar.gz").write_bytes(b"truncated download")
    result, found = outcomes(tmp_path, "-rs", "experiments/test_training.py", "-k", "2w2a")
    assert found == {"experiments/test_training.py::test_training[2w2a]": "skipped"}, result.stdout + result.stderr
    assert f"data: {tmp_path / 'data' / 'cifar-10-python.tar.gz'} is corrupt or not the CIFAR-10 python archive" \
        in result.stdout



DRY_RUN = ("experiments/test_training.py::test_training[2w2a]", "experiments/test_finn_flow.py::test_finn_flow[2w2a]",
           "experiments/test_folding.py::test_folding[0.85-2w2a-pynq-z1]", "experiments/test_pruning.py::test_pruning[2]",
           "experiments/test_synthesis.py::test_synthesis[2w2a-exact]", "experiments/test_board.py::test_board[2w2a-exact]")


@pytest.mark.slow
def test_paper_dry_run_runs_every_paper_code_path_on_the_cpu(tmp_path):
    """--scale paper --max-steps 2 on a CIFAR-10 archive in the real format: the paper recipe
    (crop+flip, lr schedule, batch 128) cut to two steps, the CIFAR-10 reader, both pruning sweeps
    up to the paper's 90% sparsity, folding and the FINN flow; the Vivado and board stages skip."""
    write_tiny_cifar(tmp_path / "data", per_batch=30, test_images=20)  # 150 training images: a batch of 128
    result, found = outcomes(tmp_path, "--max-steps", "2", "-rs", "-W", "ignore", *DRY_RUN)
    assert result.returncode == 0 and found == dict(zip(DRY_RUN, ["passed"] * 4 + ["skipped"] * 2)), \
        result.stdout[-3000:] + result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert [line.split(": ", 1)[1].split(":")[0] for line in skipped] == ["vivado", "board"]

    training = json.loads((tmp_path / "reports" / "training.json").read_text())
    assert {run["scale"] for run in training["runs"].values()} == {"paper-dry"}
    (row,) = [r for r in training["rows"] if r["values"]["source"] == "pynqrepro (paper-dry)"]
    assert row["values"]["dataset"] == "cifar10" and row["values"]["epochs"] == 2  # one batch of 128 per epoch
    assert {k: row["config"][k] for k in ("epochs", "augment", "lr_step", "batch_size", "max_steps")} == \
        {"epochs": 500, "augment": "crop_flip", "lr_step": 40, "batch_size": 128, "max_steps": 2}
    pruning = json.loads((tmp_path / "reports" / "pruning.json").read_text())
    deepest = {}
    for r in pruning["rows"]:
        if r["values"].get("source") == "pynqrepro (paper-dry)" and r["values"].get("sparsity %") is not None:
            deepest[r["values"]["method"]] = max(deepest.get(r["values"]["method"], 0), r["values"]["sparsity %"])
    assert deepest["simd_blocks"] > 75 and deepest["channels"] > 75  # beyond the study's last step
