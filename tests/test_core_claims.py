"""Build claims, work directories and cluster settings, without a cluster (test_slurm.py has one)."""

import multiprocessing
import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from pynqrepro.core import claims
from pynqrepro.core.cluster import diagnosis, submission
from pynqrepro.core.errors import UserError
from pynqrepro.core.cluster.config import ClusterConfig
from pynqrepro.core.cluster.submission import SlurmExecutor
from pynqrepro.core.executor import JobFailed, JobSpec
from pynqrepro.core.progress import ProgressLine
from pynqrepro.core.store import ArtifactStore, BuildTask, is_built


def _race(paths: list[str], start, wins) -> None:
    start.wait()
    for path in paths:
        if claims.try_claim(Path(path), claims.ClaimRecord("s", Path(path).name, "race")):
            wins.put(path)


def test_each_claim_has_exactly_one_winner_among_racing_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f".{i}.claim") for i in range(25)]  # each key's generation 1
    start, wins = ctx.Event(), ctx.Queue()
    racers = [ctx.Process(target=_race, args=(paths, start, wins)) for _ in range(3)]
    for racer in racers:
        racer.start()
    start.set()
    for racer in racers:
        racer.join(60)
    won = [wins.get(timeout=5) for _ in paths]
    assert sorted(won) == sorted(paths) and wins.empty()
    assert not list(tmp_path.glob("*.tmp"))


def _claim_of_dead_process(claim: Path, stage: str, key: str) -> None:
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    assert claims.try_claim(claim, claims.ClaimRecord(stage, key, "crashed", pid=dead.pid, pid_start="0"))


def test_claim_of_a_dead_process_on_this_host_is_broken_and_the_artifact_built(tmp_path):
    store = ArtifactStore(tmp_path)
    key = store.key("train", {"seed": 1})
    claim = tmp_path / "train" / f".{key}.claim"
    claim.parent.mkdir()
    _claim_of_dead_process(claim, "train", key)  # generation 1

    artifact = store.get_or_build("train", {"seed": 1}, lambda out: (out / "w.bin").write_bytes(b"w"))
    assert artifact.file("w.bin").read_bytes() == b"w"
    assert claims.generations(claim) == [2] and claims.current(claim)[1].state == claims.RELEASED


def test_holder_on_another_host_is_alive_while_its_heartbeat_changes(tmp_path):
    record = claims.ClaimRecord("train", "k", "s", host="node-elsewhere", boot="other")
    assert claims.try_claim(tmp_path / ".k.claim", record)
    claim = claims.claim_file(tmp_path / ".k.claim", 1)
    watch = claims.StaleWatch(stale_after=0.3)
    assert claims.process_status(claim, record, watch).alive
    time.sleep(0.4)
    assert not claims.process_status(claim, record, watch).alive  # no heartbeat for 0.4 s of our clock
    with claims.Heartbeat(claim, interval=0.02):
        time.sleep(0.1)
    assert claims.process_status(claim, record, watch).alive


def _failed_job_claim(store: ArtifactStore, session: str) -> str:
    key = store.key("prune", {"step": 1})
    claim = store.root / "prune" / f".{key}.claim"
    claim.parent.mkdir(parents=True, exist_ok=True)
    record = claims.ClaimRecord("prune", key, session, executor="slurm", job_id="4711", state="failed",
                                error="SLURM job 4711 (prune 1) failed on n1: the dataset is missing: put it in DIR")
    assert claims.try_claim(claim, record)
    return key


def test_a_failed_job_is_reported_in_its_session_and_retried_by_a_later_one(tmp_path):
    store = ArtifactStore(tmp_path, session="first")
    _failed_job_claim(store, "first")
    with pytest.raises(JobFailed, match=r"^SLURM job 4711 \(prune 1\) failed on n1: the dataset is missing"):
        store.get_or_build("prune", {"step": 1}, lambda out: None)

    later = ArtifactStore(tmp_path, session="second")
    artifact = later.get_or_build("prune", {"step": 1}, lambda out: (out / "step.json").write_text("{}"))
    assert artifact.file("step.json").is_file()


def test_resumable_build_keeps_its_work_directory_after_a_failure(tmp_path):
    store = ArtifactStore(tmp_path)
    attempts = []

    def train(out: Path) -> None:
        attempts.append(sorted(p.name for p in out.iterdir()))
        (out / f"epoch{len(attempts)}.ckpt").write_text("weights")
        if len(attempts) == 1:
            raise KeyboardInterrupt  # killed mid-training

    with pytest.raises(KeyboardInterrupt):
        store.get_or_build("train", {"seed": 1}, train, job=JobSpec("train", resumable=True))
    artifact = store.get_or_build("train", {"seed": 1}, train, job=JobSpec("train", resumable=True))
    assert attempts == [[], ["epoch1.ckpt"]]  # the second attempt continued from the first's files
    assert sorted(p.name for p in artifact.path.iterdir()) == ["_artifact.json", "epoch1.ckpt", "epoch2.ckpt"]
    assert not list((tmp_path / "train").glob(f".{artifact.key}.work*"))


def test_other_builds_and_fresh_sessions_start_from_an_empty_work_directory(tmp_path):
    seen = []

    def build(out: Path) -> None:
        seen.append(sorted(p.name for p in out.iterdir()))
        (out / "part.bin").write_text("x")
        raise RuntimeError("crash")

    for job in (JobSpec("finn"), JobSpec("train", resumable=True)):
        with pytest.raises(RuntimeError):
            ArtifactStore(tmp_path).get_or_build("hw", {"job": job.kind}, build, job=job)
    work = next(tmp_path.glob("hw/.*.work-*"))  # only the resumable build's remains
    assert len(list(tmp_path.glob("hw/.*.work-*"))) == 1
    os.utime(work, (time.time() - 60, time.time() - 60))
    with pytest.raises(RuntimeError):
        ArtifactStore(tmp_path, fresh_since=time.time() - 1).get_or_build(
            "hw", {"job": "train"}, build, job=JobSpec("train", resumable=True))
    assert seen == [[], [], []]


def test_cluster_settings_merge_sections_over_the_top_level(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text('account = "lab"\ntime_min = 60\ncpus = 2\npoll_s = 3\n'
                    '[train]\npartition = "gpu"\ngpus = 2\nmem_gb = 32\n'
                    '[vivado]\nconstraint = "vivado"\nsetup = ["source /opt/Xilinx/settings64.sh"]\n')
    config = ClusterConfig.load(path, partition="batch", account="other")
    train, finn, vivado = (config.classes[k] for k in ("train", "finn", "vivado"))
    assert (train.partition, train.gpus, train.mem_gb, train.cpus, train.time_min) == ("gpu", 2, 32, 2, 60)
    assert (finn.partition, finn.gpus, finn.mem_gb) == ("batch", 1, None)
    assert vivado.constraint == "vivado" and vivado.setup == ("source /opt/Xilinx/settings64.sh",)
    assert {c.account for c in config.classes.values()} == {"other"} and config.poll_s == 3
    assert config.where("finn", "partition") == "--slurm-partition"
    assert config.where("train", "partition") == f"[train] partition in {path}"


@pytest.mark.parametrize("text,match", [
    ("gpu = 1\n", r"unknown setting 'gpu' in .*: use account, constraint, cpus"),
    ("[train]\nmemory = 3\n", r"unknown setting 'memory' under \[train\]"),
    ("[vivado]\nmem_gb = -4\n", r"mem_gb = -4 \(\[vivado\] mem_gb in .*\) must be a positive number"),
    ("cpus = 1.5\n", r"cpus = 1.5 \(cpus in .*\) must be an integer >= 1"),
    ("[train]\nsetup = \"module load cuda\"\n", r"must be a list of shell lines"),
    ("train = 3\n", r"train in .* must be a table \(\[train\]\)"),
    ("[train\n", r"is not readable TOML"),
])
def test_bad_cluster_settings_are_one_line_errors(tmp_path, text, match):
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match) as error:
        ClusterConfig.load(path)
    assert "\n" not in str(error.value)


def test_missing_cluster_config_names_the_option(tmp_path):
    with pytest.raises(UserError, match=r"--cluster-config .*nope.toml does not exist"):
        ClusterConfig.load(tmp_path / "nope.toml")


def test_progress_line_is_written_on_change_at_most_every_interval():
    written = []
    progress = ProgressLine(written.append, every=0.3)
    for line in ("1 queued", "1 queued", "1 running", "1 finished"):
        progress(line)
    assert written == ["1 queued"]  # the changes within the interval wait
    time.sleep(0.35)
    progress("1 finished")
    progress.flush()
    assert written == ["1 queued", "1 finished"]  # the latest state, once


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "xdist worker"])
def test_waiting_asks_slurm_only_for_a_progress_line_that_is_shown(tmp_path, monkeypatch, terminal):
    asked, written = [], []
    monkeypatch.setattr(submission, "check_cluster", lambda config: config)
    monkeypatch.setattr(diagnosis, "job_info", lambda job_id: asked.append(job_id) or {"JobState": "RUNNING"})
    (tmp_path / "train").mkdir()
    claims.try_claim(tmp_path / "train" / ".k.claim", claims.ClaimRecord("train", "k", "s", job_id="7"))
    executor = SlurmExecutor(ClusterConfig(poll_s=0), progress=ProgressLine(written.append if terminal else None))
    task = SimpleNamespace(root=tmp_path, describe=lambda: "train k")
    for _ in range(5):
        executor.wait(task, claims.HolderStatus(True, "job 7", job_id="7"))
    assert asked == (["7"] if terminal else [])  # once per interval (30 s), not once per poll
    assert written == (["pynqrepro: SLURM jobs: 0 queued, 1 running, 0 finished; waiting for train k: job 7"]
                       if terminal else [])


def _task(root: Path, record: claims.ClaimRecord | None = None, resumable: bool = False) -> BuildTask:
    job = JobSpec("train", resumable=True) if resumable else None
    manifest = {"stage": "train", "key": "k", "config": {}, "inputs": {}, "environment": {}}
    task = BuildTask(root, "train", "k", lambda out: None, manifest, job)
    (root / "train").mkdir(parents=True, exist_ok=True)
    task.record = record
    return task


def _dead_holder(base: Path) -> claims.ClaimRecord:
    base.parent.mkdir(parents=True, exist_ok=True)
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    record = claims.ClaimRecord("train", "k", "crashed", pid=dead.pid, pid_start="0")
    assert claims.try_claim(base, record)
    return record


def test_two_waiters_that_judge_a_holder_dead_at_once_make_one_new_holder(tmp_path):
    task = _task(tmp_path)
    _dead_holder(task.claim)
    seen = [claims.current(task.claim) for _ in range(2)]  # both waiters read generation 1, dead
    assert all(not claims.process_status(task.claim, record, claims.StaleWatch()).alive for _, record in seen)
    first, second = (claims.ClaimRecord("train", "k", s, generation=generation + 1) for s, (generation, _) in
                     zip(("w1", "w2"), seen))
    assert claims.try_claim(task.claim, first)
    assert not claims.try_claim(task.claim, second)  # the same generation: taken
    assert claims.current(task.claim)[1] == first and claims.holds(task.claim, first)
    assert claims.generations(task.claim) == [2]  # the dead generation is gone, the new holder's stays


def test_a_holder_judged_dead_is_fenced_out_and_builds_never_mix(tmp_path):
    """The zombie keeps building after a successor took over: it cannot touch the successor's
    files, and it cannot publish, before or after the successor does."""
    zombie = _task(tmp_path, claims.ClaimRecord("train", "k", "a"))
    assert claims.try_claim(zombie.claim, zombie.record)
    zombie.prepare()
    (zombie.work / "a.bin").write_text("zombie's half")
    successor = _task(tmp_path, claims.ClaimRecord("train", "k", "b", generation=2))
    assert claims.try_claim(successor.claim, successor.record)  # it judged the zombie dead
    successor.prepare()
    assert sorted(p.name for p in successor.work.iterdir()) == []  # not the zombie's files
    (successor.work / "b.bin").write_text("whole")
    zombie.work.mkdir(parents=True, exist_ok=True)  # the zombie's next write recreates its own directory
    (zombie.work / "a.bin").write_text("zombie's half")
    assert not zombie.publish({"executor": "test"})  # its claim is no longer in force
    assert not zombie.final.exists()
    claims.release_claim(zombie.claim, zombie.record)  # a late release by the zombie
    assert claims.holds(successor.claim, successor.record)
    assert successor.publish({"executor": "test"})
    assert sorted(p.name for p in zombie.final.iterdir()) == ["_artifact.json", "b.bin"]
    assert is_built(zombie.final)


def test_a_superseded_holder_cannot_overwrite_its_successors_record(tmp_path):
    base = tmp_path / ".k.claim"
    old, new = claims.ClaimRecord("train", "k", "a"), claims.ClaimRecord("train", "k", "b", generation=2)
    assert claims.try_claim(base, old) and claims.try_claim(base, new)
    claims.update_claim(base, replace(old, job_id="17", state="submitted"))  # sbatch answered late
    claims.release_claim(base, old)
    assert claims.current(base) == (2, new) and claims.holds(base, new) and not claims.holds(base, old)


def test_a_new_holder_resumes_from_a_copy_of_a_dead_holders_work(tmp_path):
    dead = _task(tmp_path, _dead_holder(tmp_path / "train" / ".k.claim"), resumable=True)
    dead.prepare()
    (dead.work / "epoch1.ckpt").write_text("weights after epoch 1")
    (dead.work / ".epoch2.ckpt.x1y2.tmp").write_text("weights after ep")  # killed mid atomic write
    heir = _task(tmp_path, claims.ClaimRecord("train", "k", "b", generation=2), resumable=True)
    assert claims.try_claim(heir.claim, heir.record)
    heir.prepare()
    assert (heir.work / "epoch1.ckpt").read_text() == "weights after epoch 1"
    assert not dead.work.exists()  # adopted, then removed: nobody resumes from it twice
    dead.work.mkdir()
    (dead.work / "epoch2.ckpt").write_text("a zombie's late write")
    assert sorted(p.name for p in heir.work.iterdir()) == ["epoch1.ckpt"]


def test_an_adoption_cut_short_is_never_continued(tmp_path):
    dead = _task(tmp_path, _dead_holder(tmp_path / "train" / ".k.claim"), resumable=True)
    dead.prepare()
    (dead.work / "epoch1.ckpt").write_text("weights")
    cut = tmp_path / "train" / ".k.work-2.adopting"  # generation 2 was killed while copying
    cut.mkdir()
    (cut / "epoch1.ckpt").write_text("wei")
    heir = _task(tmp_path, claims.ClaimRecord("train", "k", "c", generation=3), resumable=True)
    heir.prepare()
    assert (heir.work / "epoch1.ckpt").read_text() == "weights"
    assert sorted(p.name for p in (tmp_path / "train").glob(".k.work*")) == [".k.work-3"]


def test_the_heartbeat_outlives_a_transient_error(tmp_path, monkeypatch):
    path = tmp_path / ".k.claim-1"
    path.write_text("{}")
    os.utime(path, (0, 0))
    real, calls = os.utime, []

    def flaky(target, *args, **kwargs):
        calls.append(target)
        if len(calls) == 1:
            raise OSError(116, "Stale file handle")  # an NFS hiccup
        return real(target, *args, **kwargs)

    monkeypatch.setattr(claims.os, "utime", flaky)
    with claims.Heartbeat(path, interval=0.02) as beat:
        time.sleep(0.2)
    assert beat.failures == 1 and len(calls) > 2 and path.stat().st_mtime > 0


def _slurm_executor(monkeypatch, text: str = "") -> SlurmExecutor:
    monkeypatch.setattr(submission, "check_cluster", lambda config: config)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cluster-{os.getpid()}-{abs(hash(text))}.toml"
    path.write_text(text)
    try:
        return SlurmExecutor(ClusterConfig.load(path), progress=ProgressLine(None))
    finally:
        path.unlink()


@pytest.mark.parametrize("text,vivado", [
    ("", False),  # every kind on the default partition: nothing says it has Vivado
    ('partition = "batch"\n', False),  # one partition for all kinds is no Vivado host either
    ('[vivado]\npartition = "synth"\n', True),
    ('[vivado]\nconstraint = "vivado"\n', True),
    ('constraint = "vivado"\n', True),
])
def test_slurm_provides_vivado_only_where_the_settings_place_vivado_jobs(monkeypatch, text, vivado):
    assert _slurm_executor(monkeypatch, text).provides("vivado") is vivado


@pytest.mark.parametrize("scontrol", [None, "/usr/bin/scontrol"], ids=["no scontrol", "controller silent"])
def test_a_waiter_that_cannot_ask_slurm_gives_up_after_its_ceiling_in_one_line(tmp_path, monkeypatch, scontrol):
    monkeypatch.setattr(diagnosis.shutil, "which", lambda tool: scontrol and f"/usr/bin/{tool}")
    monkeypatch.setattr(diagnosis, "job_info", lambda job_id: {"JobState": diagnosis.NOT_ANSWERING})
    monkeypatch.setattr(diagnosis, "UNANSWERED_S", 0.3)
    monkeypatch.setattr("pynqrepro.core.executor.JOB_POLL_S", 0.05)
    store = ArtifactStore(tmp_path)
    key = store.key("train", {"seed": 1})
    (tmp_path / "train").mkdir()
    claims.try_claim(tmp_path / "train" / f".{key}.claim",
                     claims.ClaimRecord("train", key, "another session", "slurm", job_id="42", state="submitted"))
    started = time.monotonic()
    with pytest.raises(JobFailed, match=r"SLURM job 42 \(train \w{8}\): .*for 0 min: wait from a host with "
                                        r"SLURM's tools") as failure:
        store.get_or_build("train", {"seed": 1}, lambda out: None, job=JobSpec("train"))
    assert "\n" not in str(failure.value) and 0.3 <= time.monotonic() - started < 30
    assert ("no scontrol on PATH" in str(failure.value)) is (scontrol is None)


def test_the_ceiling_restarts_when_slurm_answers_again(monkeypatch):
    answers = iter([diagnosis.NOT_ANSWERING, "RUNNING", diagnosis.NOT_ANSWERING])
    monkeypatch.setattr(diagnosis.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(diagnosis, "job_info", lambda job_id: {"JobState": next(answers)})
    monkeypatch.setattr(diagnosis, "UNANSWERED_S", 0.2)
    record, watch = claims.ClaimRecord("train", "k", "s", job_id="7", state="submitted"), claims.StaleWatch()
    assert diagnosis.job_status(record, watch).alive
    time.sleep(0.25)
    assert diagnosis.job_status(record, watch).alive  # RUNNING: an answer
    assert diagnosis.job_status(record, watch).alive  # silent again, but only just


def test_a_job_submitit_requeued_is_waited_for_while_slurm_shows_it_ended(tmp_path, monkeypatch):
    """Seen in CI: the waiter read FAILED (exit 1:0) in the moment between submitit's requeue and SLURM's
    PENDING, and reported a healthy job as failed."""
    # as in the CI run: submitit logs to the job's stdout, srun's and slurmstepd's lines go to stderr
    log, err = tmp_path / "7_0_log.out", tmp_path / "7_0_log.err"
    log.write_text("submitit INFO - Starting with JobEnvironment(job_id=7)\nepoch 1\n"
                   "submitit WARNING - Caught signal SIGUSR2 on vm: this job is preempted.\n"
                   "submitit INFO - Calling checkpoint method.\n")  # SLURM may show it ended before the next line
    err.write_text("slurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-12-07T09:34:47 DUE TO JOB REQUEUE ***\n")
    answers = iter(["FAILED", "FAILED", "PENDING", "FAILED", "FAILED"])
    monkeypatch.setattr(diagnosis.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(diagnosis, "job_info", lambda job_id: {"JobState": next(answers), "ExitCode": "1:0"})
    monkeypatch.setattr(diagnosis, "REQUEUE_GRACE_S", 0.2)
    record = claims.ClaimRecord("train", "k", "s", job_id="7", state="submitted", log=str(err))
    watch = claims.StaleWatch()
    assert diagnosis.job_status(record, watch).alive  # requeued by submitit, SLURM not caught up yet
    time.sleep(0.25)
    assert not diagnosis.job_status(record, watch).alive  # still ended after the grace: it did end
    assert diagnosis.job_status(record, watch).alive  # PENDING: queued again
    log.write_text(log.read_text() + "submitit INFO - Starting with JobEnvironment(job_id=7)\nTraceback\n")
    assert not diagnosis.job_status(record, watch).alive  # a failure after the requeued run started
    log.write_text(log.read_text() + "submitit INFO - Starting with JobEnvironment(job_id=7)\n"
                   "submitit INFO - Calling checkpoint method.\n"
                   "submitit WARNING - Job not requeued because: timed-out too many times.\n")
    assert not diagnosis.job_status(record, watch).alive  # submitit gave up: ended, no grace


def test_other_ranks_wait_for_rank_zeros_prepare(tmp_path, monkeypatch):
    from pynqrepro.core.cluster import jobbody

    task = _task(tmp_path, claims.ClaimRecord("train", "k", "a"))
    job = jobbody.StoreJob(task, "store", "login")
    env = SimpleNamespace(job_id="9", global_rank=1)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    monkeypatch.setattr(jobbody, "PREPARE_WAIT_S", 0.3)
    job._prepared(env).write_text("9:0")  # the previous run's marker does not count
    with pytest.raises(UserError, match=r"^rank 1 of SLURM job 9 waited 0 s for rank 0 to prepare"):
        job._wait_for_prepare(env)
    writer = threading.Timer(0.1, lambda: job._prepared(env).write_text("9:1"))
    writer.start()
    started = time.monotonic()
    job._wait_for_prepare(env)
    assert time.monotonic() - started >= 0.1


def test_a_broken_cluster_config_fails_without_executor_slurm_too(tmp_path, capsys):
    from pynqrepro.core.executor import LOCAL
    from pynqrepro.core.executor_options import make_executor

    broken = tmp_path / "cluster.toml"
    broken.write_text("[vivado\n")
    with pytest.raises(UserError, match=r"--cluster-config .*cluster.toml is not readable TOML") as error:
        make_executor("local", broken)
    assert "\n" not in str(error.value)
    good = tmp_path / "good.toml"
    good.write_text('[vivado]\npartition = "synth"\n')
    assert make_executor("local", good) is LOCAL
    assert capsys.readouterr().err.strip().splitlines() == [
        f"pynqrepro: warning: --cluster-config {good} applies to SLURM jobs only: add --executor slurm to use it"]


def test_executor_slurm_without_a_reachable_cluster_is_one_line(monkeypatch):
    from pynqrepro.core.cluster import config as cluster_config

    monkeypatch.setattr(cluster_config, "missing_tools", lambda: [])
    stderr = ("sinfo: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n"
              "sinfo: error: fetch_config: DNS SRV lookup failed\nsinfo: error: _establish_config_source: "
              "failed to fetch config\nsinfo: fatal: Could not establish a configuration source\n")
    monkeypatch.setattr(cluster_config, "run_tool", lambda *command: subprocess.CompletedProcess(command, 1, "", stderr))
    with pytest.raises(UserError) as error:
        cluster_config.check_cluster(ClusterConfig.load(None))
    assert str(error.value) == (
        "cannot reach SLURM's controller from this host (sinfo: sinfo: error: resolve_ctls_from_dns_srv: res_nsearch "
        "error: Unknown host): check that slurmctld runs and SLURM_CONF names it (scontrol ping), or use --executor "
        "local")

    def silent(*command):
        raise subprocess.TimeoutExpired(command, 60)

    monkeypatch.setattr(cluster_config, "run_tool", silent)
    with pytest.raises(UserError, match=r"^cannot reach SLURM's controller from this host \(sinfo gave no answer"):
        cluster_config.check_cluster(ClusterConfig.load(None))
