"""Content-keyed artifact store through which stages hand each other checkpoints, ONNX models,
folding configs and reports.

An artifact's key hashes everything that determines it: the stage name, its full configuration,
the keys of its input artifacts, the versions of the libraries that shape it and a fingerprint of
the pynqrepro code that builds it (``core.fingerprint``: the build function's module and what it
imports). A changed setting, seed, upstream artifact or build code therefore gives a new key, never
a stale hit; entries under older keys stay on disk but are never served.

A build happens in the key's work directory ``<stage>/.<key>.work`` and is renamed into place with
its manifest only when complete, under the key's claim (``pynqrepro.core.claims``), so however many
processes, pytest sessions or hosts ask for an artifact, it is built once: the others find the
claim and wait for its holder, a local process or a SLURM job (``pynqrepro.core.executor``).
A resumable build (training: epoch checkpoints) keeps its work directory when it fails or its job
is requeued, and continues from it; any other build starts from an empty one.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pynqrepro.core import claims
from pynqrepro.core.executor import LOCAL, PROCESS_POLL_S, Executor, JobFailed, JobSpec, holder_status
from pynqrepro.core.fingerprint import build_module, code_fingerprint
from pynqrepro.core.provenance import package_versions

MANIFEST = "_artifact.json"
KEY_PACKAGES = ("torch", "brevitas", "qonnx", "finn-plus")  # pynqrepro itself: by its code (core.fingerprint)
STORE_FORMAT = 2


def _caller_module() -> str:
    """The module of the code that called the store method that calls this one."""
    return sys._getframe(2).f_globals.get("__name__", "__main__")


@dataclass(frozen=True)
class Artifact:
    """A published artifact: a directory of files plus what it was built from."""

    stage: str
    key: str
    path: Path
    config: dict

    def file(self, name: str) -> Path:
        return self.path / name


def canonical_json(obj) -> str:
    """Deterministic JSON for hashing; refuses types whose text form would be ambiguous."""

    def encode(value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        raise TypeError(f"cannot key an artifact on a {type(value).__name__}: use plain data")

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=encode)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_checksums(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): _sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def is_built(path: Path, fresh_since: float | None = None, expect: tuple[str, ...] = ()) -> bool:
    """Complete, uncorrupted, holding the ``expect``ed files (an entry of an older layout does not)
    and (under --fresh) made after ``fresh_since``."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if fresh_since is not None and manifest.get("created", 0) < fresh_since:
        return False
    files = manifest.get("files")
    return files == _file_checksums(path) and all(name in files for name in expect)


@dataclass
class BuildTask:
    """One artifact build, everything a local process or a SLURM job needs to run and publish it."""

    root: Path
    stage: str
    key: str
    build: Callable[[Path], None]
    manifest: dict  # stage, key, config, inputs, environment
    job: JobSpec | None
    fresh_since: float | None = None
    expect: tuple[str, ...] = ()  # files the entry must hold (``is_built``)

    @property
    def final(self) -> Path:
        return self.root / self.stage / self.key

    @property
    def work(self) -> Path:
        return self.root / self.stage / f".{self.key}.work"

    @property
    def claim(self) -> Path:
        return self.root / self.stage / f".{self.key}.claim"

    @property
    def resumable(self) -> bool:
        return self.job is not None and self.job.resumable

    def describe(self) -> str:
        return f"{self.stage} {self.key[:8]}"

    def is_built(self) -> bool:
        return is_built(self.final, self.fresh_since, self.expect)

    def prepare(self) -> None:
        """Empty the work directory unless the build resumes from it (and it is not from before --fresh)."""
        if self.work.exists():
            stale = self.fresh_since is not None and self.work.stat().st_mtime < self.fresh_since
            if stale or not self.resumable:
                shutil.rmtree(self.work)
        self.work.mkdir(parents=True, exist_ok=True)

    def publish(self, built_by: dict) -> None:
        """Write the manifest (with who built it) and rename the work directory into place."""
        # built during a --fresh session means fresh, whatever the clock of the node that built it says
        created = max(time.time(), self.fresh_since or 0.0)
        manifest = {**self.manifest, "created": created, "built_by": built_by, "files": _file_checksums(self.work)}
        (self.work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if self.final.exists():  # corrupt or stale entry: replace it
            shutil.rmtree(self.final)
        os.rename(self.work, self.final)

    def discard(self) -> None:
        """After a failed build: keep what a resumable build can continue from, drop the rest."""
        if not self.resumable:
            shutil.rmtree(self.work, ignore_errors=True)


class ArtifactStore:
    """Get-or-build cache of stage outputs under ``root``.

    ``fresh_since`` (a UNIX time, set by ``--fresh``) makes entries published before that moment
    count as absent, so a fresh session rebuilds each artifact once and then shares it.
    ``executor`` runs the builds that name a ``JobSpec`` (default: in this process); ``session``
    tells this store's failed jobs from older ones, which are retried.
    """

    def __init__(self, root: Path, fresh_since: float | None = None, executor: Executor | None = None,
                 session: str | None = None):
        self.root = Path(root)
        self.fresh_since = fresh_since
        self.executor = executor or LOCAL
        self.session = session or uuid.uuid4().hex
        self._environment = {name: package_versions().get(name) for name in KEY_PACKAGES}

    def key(self, stage: str, config: Mapping, inputs: Mapping[str, Artifact] | None = None,
            code: str | None = None) -> str:
        """The key of (stage, config, inputs) built by module ``code``'s build function (default:
        the caller's module, as ``get_or_build`` takes the build function's)."""
        material = {
            "format": STORE_FORMAT,
            "stage": stage,
            "config": config,
            "inputs": {name: art.key for name, art in sorted((inputs or {}).items())},
            "environment": self._environment,
            "code": code_fingerprint(code or _caller_module()),
        }
        return hashlib.sha256(canonical_json(material).encode()).hexdigest()[:24]

    def path_for(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def find(self, stage: str, config: Mapping, inputs: Mapping[str, Artifact] | None = None,
             code: str | None = None) -> Artifact | None:
        """The artifact for (stage, config, inputs) if it is built (and fresh enough), else None.
        ``code``: the module whose build function builds it (default: the caller's)."""
        artifact = self._artifact(stage, config, inputs, code or _caller_module())
        return artifact if is_built(artifact.path, self.fresh_since) else None

    def _artifact(self, stage: str, config: Mapping, inputs: Mapping[str, Artifact] | None, code: str) -> Artifact:
        key = self.key(stage, config, inputs, code)
        return Artifact(stage, key, self.path_for(stage, key), json.loads(canonical_json(config)))

    def get_or_build(
        self,
        stage: str,
        config: Mapping,
        build: Callable[[Path], None],
        inputs: Mapping[str, Artifact] | None = None,
        job: JobSpec | None = None,
        expect: tuple[str, ...] = (),
    ) -> Artifact:
        """The artifact for (stage, config, inputs), built by ``build(out_dir)`` if absent.

        ``job`` marks a heavy build that the store's executor may run elsewhere (a SLURM job);
        without it the build runs in this process. ``expect``: files the entry must hold; an entry
        without them (written by an older layout of the stage) is rebuilt under the key's claim,
        as a corrupt one is.
        """
        code = build_module(build)
        artifact = self._artifact(stage, config, inputs, code)
        key = artifact.key
        if is_built(artifact.path, self.fresh_since, expect):
            return artifact
        manifest = {"stage": stage, "key": key, "config": artifact.config,
                    "inputs": {name: art.key for name, art in (inputs or {}).items()},
                    "environment": self._environment, "code": {"module": code, "fingerprint": code_fingerprint(code)}}
        task = BuildTask(self.root.absolute(), stage, key, build, manifest, job, self.fresh_since, expect)
        task.final.parent.mkdir(parents=True, exist_ok=True)
        self._obtain(task, self.executor if job is not None else LOCAL)
        return artifact

    def _obtain(self, task: BuildTask, executor: Executor) -> None:
        """Build under the key's claim, or wait for the claim's holder; retry after dead holders."""
        watch = claims.StaleWatch()
        seen_alive: set[str] = set()
        while not task.is_built():
            holder = claims.read_claim(task.claim)  # a read, not a write, for each look while another builds
            if holder is None:
                record = claims.ClaimRecord(task.stage, task.key, self.session, executor.name)
                if claims.try_claim(task.claim, record):
                    if task.is_built():  # published while we looked
                        claims.release_claim(task.claim, record.token)
                        return
                    if executor.start(task, record):
                        return  # built and published here: its checksums are those of the files just written
                    continue
                holder = claims.read_claim(task.claim)
                if holder is None:  # released meanwhile, or unreadable: look again after a pause, not in a spin
                    time.sleep(PROCESS_POLL_S)
                    continue
            status = holder_status(task.claim, holder, watch)
            if status.alive:
                seen_alive.add(holder.token)
                executor.wait(task, status)
            elif status.error and (holder.token in seen_alive or holder.session == self.session):
                if holder.state != "failed":
                    claims.update_claim(task.claim, dataclasses.replace(holder, state="failed", error=status.error))
                raise JobFailed(status.error)
            else:  # crashed, or failed before this session: build it again (resuming if it can)
                claims.break_claim(task.claim, holder)


def store_from_args(args) -> ArtifactStore:
    """A command's ``--store-dir`` store, checked writable before any work, building through its
    ``--executor`` options (``core.executor_options.add_executor_options``)."""
    from pynqrepro.core.atomic import check_writable
    from pynqrepro.core.executor_options import executor_from_args

    check_writable(args.store_dir, "--store-dir", directory=True)
    return ArtifactStore(args.store_dir, executor=executor_from_args(args))
