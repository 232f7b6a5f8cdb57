"""--executor slurm against a real SLURM: a single-node cluster from Debian's slurm-wlm and munge,
brought up for this module (``slurm_cluster.py``). Skipped only where it cannot start (no packages,
not root), with the reason; CI sets PYNQREPRO_REQUIRE_SLURM=1 so that there it fails instead.

Bit-identical comparisons run the local side with one torch thread, as the jobs (cpus = 1) do.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import cloudpickle
import onnx
import pytest
import torch
from onnx import numpy_helper

from pynqrepro.core import claims
from pynqrepro.core.boards import get_board
from pynqrepro.core.errors import UserError
from pynqrepro.core.executor import JobFailed, JobSpec
from pynqrepro.core.executor_options import make_executor
from pynqrepro.core.progress import ProgressLine
from pynqrepro.core.store import MANIFEST, Artifact, ArtifactStore, is_built
from pynqrepro.finnflow.hw_build import HW_MODEL, hw_model_artifact, load_hw_model
from pynqrepro.finnflow.estimate import estimate
from pynqrepro.finnflow.foldconfig import apply_folding
from pynqrepro.training.checkpoint import BEST, LAST, read_checkpoint
from pynqrepro.training.distributed import launch, resolve
from pynqrepro.training.recipes import train_artifact
from pynqrepro.training.trainer import RunOptions
from slurm_cluster import SlurmCluster, missing
from slurm_session import SESSION_SEED, tiny_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the jobs run this module's test builds
REPO = Path(__file__).resolve().parents[1]
BOARD = get_board("pynq-z1")
# the test node has no GPU: CIFAR-10 configs train on its CPU; Vivado builds go to the vivado partition
TEST_SETTINGS = {"poll_s": 1, "train": {"gpus": 0}, "vivado": {"partition": "vivado", "constraint": "vivado"}}


def write_settings(path: Path, overrides: dict | None = None) -> Path:
    """A cluster config file: the test settings updated with ``overrides`` (sections merged)."""
    settings = {key: dict(value) if isinstance(value, dict) else value for key, value in TEST_SETTINGS.items()}
    for key, value in (overrides or {}).items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    top = [f"{key} = {json.dumps(value)}" for key, value in settings.items() if not isinstance(value, dict)]
    sections = [f"[{key}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
                for key, value in settings.items() if isinstance(value, dict)]
    path.write_text("\n".join(top + sections) + "\n")
    return path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing()
    if reason:
        if os.environ.get("PYNQREPRO_REQUIRE_SLURM"):
            pytest.fail(f"PYNQREPRO_REQUIRE_SLURM is set but {reason}")
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    write_settings(cluster.dir / "cluster.toml")
    yield cluster
    cluster.stop()
    if saved is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved


def slurm_store(cluster, root: Path, overrides: dict | None = None) -> ArtifactStore:
    """A store whose heavy builds are jobs on ``cluster``, as a new session (pytest run, CLI call)."""
    config = write_settings(root.parent / f"cluster-{root.name}.toml", overrides)
    return ArtifactStore(root, executor=make_executor("slurm", config, progress=ProgressLine(None)))


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def weights(artifact, name: str = BEST) -> dict:
    path = artifact if isinstance(artifact, Path) else artifact.path
    return read_checkpoint(path / "checkpoints" / name)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:3]}"


def graph_content(path: Path) -> tuple:
    """An ONNX graph without its tensor names (FINN draws them at random in every build): node
    types and attributes, and the bytes of every initializer in order."""
    model = onnx.load(str(path))
    return ([(node.op_type, [(a.name, str(onnx.helper.get_attribute_value(a))) for a in node.attribute])
             for node in model.graph.node],
            [numpy_helper.to_array(tensor).tobytes() for tensor in model.graph.initializer])


def built_by(artifact) -> dict:
    return json.loads((artifact.path / MANIFEST).read_text())["built_by"]


def submitted_jobs(root: Path) -> list[str]:
    return sorted(p.name.split("_")[0] for p in (root / "_slurm").glob("*/*_submission.sh"))


def wait_for(condition, timeout: float = 180.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted local trainings (one torch thread), the yardstick of the job runs."""
    store = ArtifactStore(tmp_path_factory.mktemp("local-store"))

    def get(cfg):
        with torch_threads(1):
            return train_artifact(store, cfg)

    return get


def test_two_sessions_share_each_job_and_match_a_local_build(cluster, reference, tmp_path):
    """Two concurrent pytest sessions on one store ask for a training and its FINN HW model: each is
    submitted once, and both equal a local build bit for bit (weights, HW graph, FINN's estimate)."""
    store = ArtifactStore(tmp_path / "shared-store")
    command = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "-p", "no:cacheprovider",
               "-n", "0", "-q", "-s", str(REPO / "tests" / "slurm_session.py"), f"--store-dir={store.root}",
               f"--reports-dir={tmp_path / 'reports'}", "--executor=slurm",
               f"--cluster-config={cluster.dir / 'cluster.toml'}"]
    sessions = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env={**os.environ, "SLURM_CONF": str(cluster.conf)}) for _ in range(2)]
    local = reference(tiny_config(SESSION_SEED))  # meanwhile, the same artifacts built here
    with torch_threads(1):
        local_hw = hw_model_artifact(ArtifactStore(local.path.parents[1]), local, BOARD)
    outputs = [session.communicate(timeout=900)[0] for session in sessions]
    for session, output in zip(sessions, outputs):
        assert session.returncode == 0, output[-3000:]

    keys = [re.search(r"artifacts: (\w+) (\w+)", output).groups() for output in outputs]
    assert keys[0] == keys[1] == (local.key, local_hw.key)
    jobs = submitted_jobs(store.root)
    # one training, its board-independent FINN lowering, the board's HW model, whichever session submitted them
    assert len(jobs) == 3, jobs
    assert any("pynqrepro: SLURM jobs:" in output for output in outputs)  # the progress line
    trained, hw = (store.path_for(stage, key) for stage, key in zip(("train", "finn_hw_model"), keys[0]))
    assert_same_weights(weights(trained), weights(local.path))
    assert_same_weights(weights(trained, LAST), weights(local.path, LAST))
    assert graph_content(hw / HW_MODEL) == graph_content(local_hw.file(HW_MODEL))
    job_estimate, local_estimate = (estimate(apply_folding(load_hw_model(artifact), None), BOARD.part, BOARD.clock_ns).to_dict()
                    for artifact in (Artifact("finn_hw_model", keys[0][1], hw, {}), local_hw))
    assert job_estimate == local_estimate
    for path in (trained, hw):  # job id, node and log recorded with the artifact
        record = json.loads((path / MANIFEST).read_text())["built_by"]
        assert record["executor"] == "slurm" and record["node"] == cluster.host
        assert record["job_id"] in jobs and Path(record["log"]).is_file()


def _interrupt_mid_training(cluster, store, cfg, interrupt):
    """Train ``cfg`` through ``store`` in a thread; once epoch 1's checkpoint exists, ``interrupt(job)``."""
    outcome = {}

    def run():
        try:
            outcome["artifact"] = train_artifact(store, cfg)
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    key = store.key("train", cfg.to_dict(), code="pynqrepro.training.recipes")
    claim = store.root / "train" / f".{key}.claim"
    job = wait_for(lambda: ((claims.current(claim) or (0, None))[1] or claims.ClaimRecord("", "", "")).job_id,
                   what="the job id")
    work = store.root / "train" / f".{key}.work-{claims.current(claim)[0]}"
    wait_for(lambda: (work / "checkpoints" / LAST).is_file(), what="epoch 1's checkpoint")
    interrupt(job)
    thread.join(600)
    return outcome, job, work


def _epoch_lines(store: ArtifactStore, job: str, epoch: int) -> int:
    log = store.root / "_slurm" / job / f"{job}_0_log.out"
    return len(re.findall(rf"epoch {epoch}: loss", log.read_text()))


def test_requeued_training_resumes_to_the_same_weights(cluster, reference, tmp_path):
    """SLURM's pre-time-limit signal (USR2): submitit checkpoints and requeues the job, which resumes
    from its last epoch checkpoint and ends with the weights of an uninterrupted run."""
    cfg = tiny_config(seed=12, epochs=3)
    store = slurm_store(cluster, tmp_path / "store")

    # SLURM holds the requeued job for cred_expire (30 s on the test cluster): no shortcut past it. A start
    # forced earlier (scontrol update StartTime=now) failed 4 of 5 CI runs as FAILED (exit 1:0) without a
    # second run: a relaunch credential not newer, to the second, than the killed run's revocation is refused
    outcome, job, _ = _interrupt_mid_training(cluster, store, cfg,
                                              lambda job: cluster.run("scancel", "--signal=USR2", job))
    assert "error" not in outcome, f"{outcome.get('error')}; SLURM's logs of the job:\n{cluster.job_history(job)}"
    artifact = outcome["artifact"]
    assert built_by(artifact)["restarts"] >= 1 and built_by(artifact)["job_id"] == job
    assert _epoch_lines(store, job, 1) == 1  # resumed after epoch 1, not restarted
    assert submitted_jobs(store.root) == [job]
    local = reference(cfg)
    assert_same_weights(weights(artifact), weights(local))
    assert_same_weights(weights(artifact, LAST), weights(local, LAST))
    assert (artifact.path / "log.csv").read_text().count("\n") == 4  # header + epochs 1..3, each once


def test_cancelled_training_is_a_one_line_error_and_resumes_when_asked_again(cluster, reference, tmp_path):
    # a cancelled job trains on for seconds (submitit ignores SLURM's SIGTERM; measured here: up to 7 s
    # before its step is killed): enough epochs remain after the first that it cannot finish meanwhile
    cfg = tiny_config(seed=12, epochs=8)
    store = slurm_store(cluster, tmp_path / "store")
    outcome, job, work = _interrupt_mid_training(cluster, store, cfg, lambda job: cluster.run("scancel", job))

    error = str(outcome["error"])
    assert isinstance(outcome["error"], JobFailed) and "\n" not in error
    assert f"SLURM job {job}" in error and "was cancelled" in error and "resume" in error
    assert str(store.root / "_slurm" / job / f"{job}_0_log.err") in error
    assert (work / "checkpoints" / LAST).is_file()  # nothing lost

    again = slurm_store(cluster, store.root)  # a later session asks again
    artifact = train_artifact(again, cfg)
    second = built_by(artifact)["job_id"]
    assert second != job and _epoch_lines(again, second, 1) == 0  # continued after epoch 1
    assert_same_weights(weights(artifact), weights(reference(cfg)))
    assert not work.exists()  # the work directory became the artifact


def test_failing_job_is_one_line_naming_its_log_and_not_resubmitted_in_the_session(cluster, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "cifar-10-python.tar.gz").write_bytes(b"not an archive")
    cfg = tiny_config(seed=13, epochs=1, dataset="cifar10")
    store = slurm_store(cluster, tmp_path / "store")

    with pytest.raises(JobFailed) as failure:
        train_artifact(store, cfg, data)
    message = str(failure.value)
    job = submitted_jobs(store.root)[0]
    assert "\n" not in message and f"SLURM job {job}" in message and "is corrupt" in message
    log = Path(re.search(r"\(log: (\S+)\)", message).group(1))
    assert log.is_file() and "is corrupt" in log.read_text()

    with pytest.raises(JobFailed, match="is corrupt"):  # the same session: the same error, no new job
        train_artifact(store, cfg, data)
    assert len(submitted_jobs(store.root)) == 1
    with pytest.raises(JobFailed, match="is corrupt"):  # a later session tries again (the data may be fixed)
        train_artifact(slurm_store(cluster, store.root), cfg, data)
    assert len(submitted_jobs(store.root)) == 2


def _hog_memory(out: Path) -> None:
    ballast = bytearray(1 << 30)
    for page in range(0, len(ballast), 4096):
        ballast[page] = 1
    time.sleep(5)
    (out / "never.txt").write_text("survived")


def _write_value(out: Path) -> None:
    (out / "value.txt").write_text("kept")


def test_job_out_of_memory_names_mem_gb(cluster, tmp_path):
    store = slurm_store(cluster, tmp_path / "store", {"finn": {"mem_gb": 0.4}})
    kept = store.get_or_build("demo", {"n": 1}, _write_value, job=JobSpec("finn"))

    with pytest.raises(JobFailed) as failure:
        store.get_or_build("demo", {"n": 2}, _hog_memory, job=JobSpec("finn"))
    message = str(failure.value)
    assert "\n" not in message and "ran out of memory" in message and "mem_gb under [finn]" in message
    assert "(log: " in message
    assert store.get_or_build("demo", {"n": 1}, _hog_memory, job=JobSpec("finn")).path == kept.path  # not rebuilt
    assert kept.file("value.txt").read_text() == "kept"
    assert not store.path_for("demo", store.key("demo", {"n": 2})).exists()


def test_store_not_shared_with_the_node_is_detected_before_building(cluster, tmp_path):
    """The job's node sees another filesystem at the store's path (a private tmpfs, as on a node
    where the path is local): the job finds no store identity and stops with the fix."""
    store_dir = tmp_path / "store"
    local = ArtifactStore(store_dir)
    kept = local.get_or_build("demo", {"n": 1}, _write_value)
    hide = f"unshare -m sh -c 'mount -t tmpfs none {store_dir} && exec \"$@\"' sh {sys.executable}"
    store = slurm_store(cluster, store_dir, {"python": hide, "log_dir": str(tmp_path / "logs")})

    with pytest.raises(JobFailed) as failure:
        store.get_or_build("demo", {"n": 2}, _write_value, job=JobSpec("finn"))
    message = str(failure.value)
    assert "\n" not in message and "does not see the store" in message and "--store-dir" in message
    assert "shared" in message
    assert kept.file("value.txt").read_text() == "kept"
    assert not store.path_for("demo", store.key("demo", {"n": 2})).exists()


def test_bad_cluster_settings_are_one_line_errors_before_any_job(cluster, tmp_path):
    with pytest.raises(UserError, match=r"unknown SLURM partition 'gpu' for train jobs \(--slurm-partition\): "
                                        r"use one of cpu, vivado"):
        make_executor("slurm", partition="gpu")
    bad = tmp_path / "bad.toml"
    bad.write_text('[vivado]\nconstraint = "ultrascale"\n')
    with pytest.raises(UserError, match=r"no node of partition 'cpu' has feature\(s\) ultrascale .*offer vivado"):
        make_executor("slurm", bad)
    bad.write_text('[train]\ngpu = 1\n')
    with pytest.raises(UserError, match="unknown setting 'gpu' under \\[train\\]"):
        make_executor("slurm", bad)

    no_slurm = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    cli = subprocess.run([sys.executable, "-m", "pynqrepro.cli", "estimate", "missing.pth", "--executor", "slurm"],
                         capture_output=True, text=True, env=no_slurm, cwd=tmp_path)
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1
    assert "needs SLURM's sbatch, srun, scontrol, sinfo on PATH" in cli.stderr and "--executor local" in cli.stderr
    session = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "-p",
                              "no:cacheprovider", str(REPO / "tests" / "slurm_session.py"), "--executor=slurm",
                              "--slurm-partition=nope", f"--store-dir={tmp_path / 's'}",
                              f"--reports-dir={tmp_path / 'r'}"], capture_output=True, text=True, cwd=REPO)
    assert session.returncode == 4 and "unknown SLURM partition 'nope'" in session.stderr
    assert not (tmp_path / "s" / "_slurm").exists()


def test_distributed_training_job_equals_the_local_ddp_path(cluster, tmp_path, monkeypatch):
    """Two SLURM tasks (gloo on CPU) train one checkpoint like two locally spawned DDP processes."""
    cfg = tiny_config(seed=14, epochs=1)
    store = slurm_store(cluster, tmp_path / "store", {"train": {"tasks_per_node": 2}})
    artifact = train_artifact(store, cfg)
    assert built_by(artifact)["tasks"] == 2

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the spawned ranks use one thread, as each task does
    spec = resolve(dist_url=f"tcp://127.0.0.1:{29400 + os.getpid() % 1000}", backend="gloo",
                   multiprocessing_distributed=True, nproc_per_node=2)
    launch(cfg, RunOptions(experiments=tmp_path / "local", progress=False), spec)
    local = read_checkpoint(tmp_path / "local" / cfg.name / "checkpoints" / BEST)["state_dict"]
    assert_same_weights(weights(artifact), local)


def test_kill_anywhere_with_slurm_jobs_publishes_each_key_once(cluster, tmp_path):
    """tests/test_store_stress.py with builds as SLURM jobs: racing sessions (tests/slurm_stress_racer.py)
    are SIGKILLed while submitting or waiting, and their jobs cancelled while they build; killed or
    failed sessions are rerun. Every key ends published once, whole, by exactly one job (by the jobs'
    own results, which submitit writes), and no job is left in SLURM's queue."""
    import pickle
    import random
    import signal

    rng, keys, rounds = random.Random(7), ["a", "b"], 2
    racer = Path(__file__).with_name("slurm_stress_racer.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(racer.parent), os.environ.get("PYTHONPATH", "")])}
    kills = cancels = 0
    for index in range(rounds):
        root = tmp_path / f"round{index}" / "store"
        root.mkdir(parents=True)
        config = write_settings(tmp_path / f"round{index}" / "cluster.toml")

        def spawn():
            return subprocess.Popen([sys.executable, str(racer), str(root), str(config), ",".join(keys),
                                     str(rng.randrange(1 << 30))], env=env, stderr=subprocess.PIPE)

        racers, reruns, deadline = [spawn() for _ in range(3)], 0, time.monotonic() + 240
        while racers:
            assert time.monotonic() < deadline, "a round did not finish"
            time.sleep(rng.uniform(0.2, 1.0))
            if reruns < 4 and rng.random() < 0.3:
                action = rng.choice(["kill", "cancel"])
                if action == "kill":
                    victim = rng.choice(racers)
                    if victim.poll() is None:
                        victim.send_signal(signal.SIGKILL)
                        kills += 1
                else:
                    running = cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i").split()
                    if running:
                        cluster.run("scancel", rng.choice(running))
                        cancels += 1
            for done in [r for r in racers if r.poll() is not None]:
                racers.remove(done)
                if done.returncode in (-signal.SIGKILL, 3):
                    reruns += 1
                    racers.append(spawn())
                else:
                    assert done.returncode == 0, done.stderr.read().decode()[-3000:]
                done.stderr.close()
        stage = root / "slurm_stress"
        entries = [p for p in stage.iterdir() if not p.name.startswith(".")]
        assert len(entries) == len(keys)
        publishers, results = set(), set()
        for result in (root / "_slurm").glob("*/*_0_result.pkl"):
            outcome, value = pickle.loads(result.read_bytes())
            results.add(result.name.split("_")[0])
            if outcome == "success" and value.get("built"):
                publishers.add(value["job_id"])
        for entry in entries:
            assert is_built(entry, verify=True)
            assert sorted(p.name for p in entry.iterdir()) == [MANIFEST, "part1.txt", "part2.txt"]
        named = sorted(built_by(Artifact("slurm_stress", e.name, e, {}))["job_id"] for e in entries)
        # each key published by exactly one job, the one its entry names (whose result a cancel may have cut off)
        assert publishers <= set(named) and all(job in publishers or job not in results for job in named)
        wait_for(lambda: not cluster.run("squeue", "-h", "-o", "%i").split(), what="an empty queue")
    print(f"\nslurm stress: {rounds} rounds, {len(keys)} keys, {kills} sessions killed, {cancels} jobs cancelled")
    assert kills + cancels >= rounds
