import json
import multiprocessing
import shutil
import time
from pathlib import Path

import pytest

from pynqrepro.core import claims, fingerprint
from pynqrepro.core import store as store_module
from pynqrepro.core.executor import LOCAL, JobSpec
from pynqrepro.core.store import MANIFEST, ArtifactStore, canonical_json


def write_value(value):
    def build(out: Path):
        (out / "value.txt").write_text(str(value))
    return build


def test_same_config_hits_and_any_change_misses(tmp_path):
    store = ArtifactStore(tmp_path)
    calls = []

    def build(out):
        calls.append(1)
        (out / "w.bin").write_bytes(b"weights")

    config = {"bits": 2, "seed": 1, "lr": 0.02}
    first = store.get_or_build("train", config, build)
    again = store.get_or_build("train", dict(reversed(list(config.items()))), build)
    assert first.key == again.key and len(calls) == 1
    assert first.file("w.bin").read_bytes() == b"weights"

    keys = {first.key}
    for changed in ({**config, "seed": 2}, {**config, "lr": 0.01}, {**config, "bits": 4}):
        keys.add(store.get_or_build("train", changed, build).key)
    keys.add(store.get_or_build("export", config, build).key)
    assert len(keys) == 5 and len(calls) == 5


def test_upstream_artifact_change_gives_new_key(tmp_path):
    store = ArtifactStore(tmp_path)
    ckpt_a = store.get_or_build("train", {"seed": 1}, write_value("a"))
    ckpt_b = store.get_or_build("train", {"seed": 2}, write_value("b"))
    onnx_a = store.get_or_build("export", {"opset": 13}, write_value("x"), inputs={"checkpoint": ckpt_a})
    onnx_b = store.get_or_build("export", {"opset": 13}, write_value("x"), inputs={"checkpoint": ckpt_b})
    assert onnx_a.key != onnx_b.key


def test_failed_build_publishes_nothing(tmp_path):
    store = ArtifactStore(tmp_path)

    def broken(out):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        store.get_or_build("train", {"seed": 1}, broken)
    stage_dir = tmp_path / "train"
    assert [p.name for p in stage_dir.iterdir() if ".claim-" not in p.name] == []  # the claim: released
    assert store.get_or_build("train", {"seed": 1}, write_value(1)).file("value.txt").read_text() == "1"


def test_corrupt_entry_is_rebuilt(tmp_path):
    store = ArtifactStore(tmp_path)
    art = store.get_or_build("train", {"seed": 1}, write_value("good"))
    art.file("value.txt").write_text("bit rot")
    rebuilt = store.get_or_build("train", {"seed": 1}, write_value("good"))
    assert rebuilt.file("value.txt").read_text() == "good"
    (art.path / MANIFEST).write_text("{not json")
    assert store.get_or_build("train", {"seed": 1}, write_value("good")).file("value.txt").read_text() == "good"


def test_a_local_build_hashes_its_files_once(tmp_path, monkeypatch):
    hashed = []
    sha256_file = store_module._sha256_file
    monkeypatch.setattr(store_module, "_sha256_file", lambda path: hashed.append(path.name) or sha256_file(path))
    art = ArtifactStore(tmp_path / "store").get_or_build("train", {"seed": 1}, write_value("new"))
    assert hashed == ["value.txt"]  # when published, not again to verify what was just written
    hashed.clear()
    assert ArtifactStore(tmp_path / "store").get_or_build("train", {"seed": 1}, write_value("new")) == art
    assert hashed == []  # its cheap manifest (size, mtime, inode) is unchanged: no hash
    verifying = ArtifactStore(tmp_path / "store", verify=True)
    for _ in range(2):
        verifying.get_or_build("train", {"seed": 1}, write_value("new"))
    assert hashed == ["value.txt"]  # --verify: hashed at its first lookup in that session
    hashed.clear()
    shutil.copytree(tmp_path / "store", tmp_path / "copy")  # new inodes: first sight of these files
    copy = ArtifactStore(tmp_path / "copy")
    assert copy.get_or_build("train", {"seed": 1}, write_value("new")).file("value.txt").read_text() == "new"
    copy.get_or_build("train", {"seed": 1}, write_value("new"))
    assert hashed == ["value.txt"]


def test_same_size_corruption_is_caught_once_the_cheap_manifest_differs(tmp_path):
    store = ArtifactStore(tmp_path)
    art = store.get_or_build("train", {"seed": 1}, write_value("good"))
    art.file("value.txt").write_text("evil")  # same size; a new mtime
    assert store.get_or_build("train", {"seed": 1}, write_value("good")).file("value.txt").read_text() == "good"


class Elsewhere:
    """Builds as a SLURM job would, out of this process; the first artifact rots once published."""

    name = "elsewhere"

    def __init__(self):
        self.starts = 0

    def start(self, task, record) -> bool:
        self.starts += 1
        LOCAL.start(task, record)
        if self.starts == 1:
            (task.final / "value.txt").write_text("bit rot")
        return False


def test_an_artifact_built_elsewhere_is_verified(tmp_path):
    executor = Elsewhere()
    store = ArtifactStore(tmp_path, executor=executor)
    assert store.get_or_build("train", {"seed": 1}, write_value("good"), job=JobSpec("train")) \
        .file("value.txt").read_text() == "good"
    assert executor.starts == 2  # the rotten one was built again


class Patient:
    """Waits as the local executor would, counting; the holder it waits for gives up on the third look."""

    name = "local"

    def __init__(self, claim: Path):
        self.claim, self.waits = claim, 0

    def start(self, task, record) -> bool:
        return LOCAL.start(task, record)

    def wait(self, task, status) -> None:
        self.waits += 1
        if self.waits == 3:
            claims.claim_file(self.claim, 1).unlink()


def _counting_claims(monkeypatch) -> list:
    tries = []
    try_claim = claims.try_claim

    def counted(path, record):
        tries.append(path)
        assert len(tries) < 100, "the waiter spins"
        return try_claim(path, record)

    monkeypatch.setattr(claims, "try_claim", counted)
    return tries


def test_a_waiter_only_reads_the_claim_while_another_builds(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    claim = tmp_path / "train" / f".{store.key('train', {'seed': 1})}.claim"
    claim.parent.mkdir()
    assert claims.try_claim(claim, claims.ClaimRecord("train", "key", "another session", "local"))  # alive: us
    tries = _counting_claims(monkeypatch)
    waiter = Patient(claim)
    art = ArtifactStore(tmp_path, executor=waiter).get_or_build("train", {"seed": 1}, write_value("mine"),
                                                                job=JobSpec("train"))
    assert art.file("value.txt").read_text() == "mine"
    assert waiter.waits == 3 and len(tries) == 1  # no claim written while the holder was alive


def test_an_unreadable_claim_is_looked_at_again_after_a_pause(tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    claim = tmp_path / "train" / f".{store.key('train', {'seed': 1})}.claim"
    claim.parent.mkdir()
    claim = claims.claim_file(claim, 1)
    claim.write_text("not a claim")
    _counting_claims(monkeypatch)
    pauses = []

    def pause(seconds):
        pauses.append(seconds)
        if len(pauses) == 2:
            claim.unlink()

    monkeypatch.setattr(store_module.time, "sleep", pause)
    assert store.get_or_build("train", {"seed": 1}, write_value("v")).file("value.txt").read_text() == "v"
    assert len(pauses) == 2


def test_an_entry_without_an_expected_file_is_rebuilt_in_place(tmp_path):
    store = ArtifactStore(tmp_path)
    old = store.get_or_build("checkpoint", {"sha256": "x"}, lambda out: (out / "x.pth").write_text("w"))
    new = store.get_or_build("checkpoint", {"sha256": "x"}, lambda out: (out / "best.tar").write_text("w"),
                             expect=("best.tar",))
    assert new.path == old.path and sorted(p.name for p in new.path.iterdir()) == [MANIFEST, "best.tar"]


def test_fresh_rebuilds_old_entries_once(tmp_path):
    ArtifactStore(tmp_path).get_or_build("train", {"seed": 1}, write_value("old"))
    fresh = ArtifactStore(tmp_path, fresh_since=time.time() + 1e-3)
    time.sleep(0.01)
    calls = []

    def build(out):
        calls.append(1)
        (out / "value.txt").write_text("new")

    assert fresh.get_or_build("train", {"seed": 1}, build).file("value.txt").read_text() == "new"
    fresh.get_or_build("train", {"seed": 1}, build)
    assert len(calls) == 1


def _build_slowly(root, counter):
    def build(out):
        with open(counter, "a") as handle:
            handle.write("built\n")
        time.sleep(1.0)
        (out / "value.txt").write_text("shared")
    art = ArtifactStore(Path(root)).get_or_build("train", {"seed": 7}, build)
    assert art.file("value.txt").read_text() == "shared"


def test_two_processes_build_once(tmp_path):
    counter = tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_build_slowly, args=(tmp_path / "store", counter)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert counter.read_text().count("built") == 1


def test_manifest_records_config_and_inputs(tmp_path):
    store = ArtifactStore(tmp_path)
    up = store.get_or_build("train", {"seed": 1}, write_value(1))
    art = store.get_or_build("export", {"board": "pynq-z1"}, write_value(2), inputs={"checkpoint": up})
    manifest = json.loads((art.path / MANIFEST).read_text())
    assert manifest["config"] == {"board": "pynq-z1"}
    assert manifest["inputs"] == {"checkpoint": up.key}
    assert manifest["environment"]["torch"].startswith("2.13")


def test_unhashable_config_is_refused():
    with pytest.raises(TypeError, match="plain data"):
        canonical_json({"model": object()})


def _stage_module(directory: Path, body: str):
    """A module ``stagecode`` in ``directory`` whose ``build`` writes ``body``, (re)loaded from its source."""
    import importlib
    import sys

    (directory / "stagecode.py").write_text(
        f"from pynqrepro.core.atomic import atomic_write_text\n\n\n"
        f"def build(out):\n    atomic_write_text(out / 'value.txt', {body!r})\n")
    sys.modules.pop("stagecode", None)
    fingerprint.code_fingerprint.cache_clear(), fingerprint.code_modules.cache_clear()
    fingerprint._source.cache_clear(), fingerprint._imports.cache_clear()
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module("stagecode")
    finally:
        sys.path.remove(str(directory))


def test_a_changed_build_function_gives_a_new_key_and_the_old_entry_is_kept_unserved(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    store = ArtifactStore(tmp_path / "store")
    old = store.get_or_build("train", {"seed": 1}, _stage_module(code, "buggy").build)
    fixed = store.get_or_build("train", {"seed": 1}, _stage_module(code, "fixed").build)
    assert fixed.key != old.key and fixed.file("value.txt").read_text() == "fixed"
    assert old.file("value.txt").read_text() == "buggy"  # kept on disk, never served again
    again = store.get_or_build("train", {"seed": 1}, _stage_module(code, "fixed").build)
    assert again == fixed
    manifest = json.loads((fixed.path / MANIFEST).read_text())
    assert manifest["code"]["module"] == "stagecode"


def test_a_stage_key_covers_the_modules_its_build_imports_and_no_others():
    modules = fingerprint.code_modules("pynqrepro.training.recipes")
    # what trains: the trainer, the model, the data, and the core helpers they call
    assert {"pynqrepro.training.trainer", "pynqrepro.models.cnv", "pynqrepro.data.digits",
            "pynqrepro.core.scale"} <= modules
    # what cannot shape a checkpoint: later stages, reports, and the store's own machinery
    assert not any(name.startswith(("pynqrepro.folding", "pynqrepro.synthesis", "pynqrepro.core.report_files",
                                    "pynqrepro.core.store", "pynqrepro.core.claims", "pynqrepro.core.cluster"))
                   for name in modules)
    assert "pynqrepro.training.checkpoint" in fingerprint.code_modules("pynqrepro.synthesis.vivado_build")


def test_verify_option_reaches_the_store_a_command_opens(tmp_path):
    import argparse

    from pynqrepro.core.executor_options import add_executor_options
    from pynqrepro.core.options import add_store_option

    parser = argparse.ArgumentParser()
    add_store_option(parser.add_argument)
    add_executor_options(parser.add_argument)
    assert store_module.store_from_args(parser.parse_args(["--store-dir", str(tmp_path), "--verify"])).verify
    assert not store_module.store_from_args(parser.parse_args(["--store-dir", str(tmp_path)])).verify
