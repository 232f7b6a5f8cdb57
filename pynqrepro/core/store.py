"""Content-keyed artifact store through which stages hand each other checkpoints, ONNX models,
folding configs and reports.

An artifact's key hashes everything that determines it: the stage name, its full configuration,
the keys of its input artifacts, the versions of the libraries that shape it and a fingerprint of
the pynqrepro code that builds it (``core.fingerprint``: the build function's module and what it
imports). A changed setting, seed, upstream artifact or build code therefore gives a new key, never
a stale hit; entries under older keys stay on disk but are never served.

A build happens under the key's claim (``pynqrepro.core.claims``) in that claim's own work
directory ``<stage>/.<key>.work-<generation>``, and is renamed into place with its manifest only
when complete and only if the claim is still in force (a fencing token), so however many processes,
pytest sessions or hosts ask for an artifact, it is built once and published once: the others find
the claim and wait for its holder, a local process or a SLURM job (``pynqrepro.core.executor``).
A resumable build (training: epoch checkpoints) keeps its work directory when it fails or its job
is requeued, and continues from it, or from a copy of a dead holder's; any other build starts from
an empty one.

A lookup checks an entry's cheap manifest (size, mtime_ns, inode of each file, kept beside it in
``<stage>/.<key>.seen``) and hashes its files only on first sight, when that differs, or when asked
(``verify``): a multi-gigabyte synthesis folder costs a stat per file, not a read.
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
from pynqrepro.core.atomic import atomic_write_json, is_temporary
from pynqrepro.core.executor import LOCAL, PROCESS_POLL_S, Executor, JobFailed, JobSpec, holder_status
from pynqrepro.core.fingerprint import build_module, code_fingerprint
from pynqrepro.core.provenance import package_versions

MANIFEST = "_artifact.json"
KEY_PACKAGES = ("torch", "brevitas", "qonnx", "finn-plus")  # pynqrepro itself: by its code (core.fingerprint)
STORE_FORMAT = 2
ADOPTING = ".adopting"  # a work directory being copied from a dead holder's


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


def _files(directory: Path) -> list[tuple[str, os.DirEntry]]:
    """Every file under ``directory`` as (path relative to it, its directory entry), sorted by path
    (scandir: one stat per file at most, where pathlib's rglob would take several)."""
    found, todo = [], [("", str(directory))]
    while todo:
        prefix, path = todo.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    todo.append((f"{prefix}{entry.name}/", entry.path))
                elif entry.is_file():
                    found.append((prefix + entry.name, entry))
    return sorted(found, key=lambda item: item[0])


def _file_checksums(directory: Path) -> dict[str, str]:
    return {name: _sha256_file(Path(entry.path)) for name, entry in _files(directory) if name != MANIFEST}


def _signature(directory: Path) -> dict[str, list[int]]:
    """The cheap manifest: (size, mtime_ns, inode) of every file of an entry, its manifest included.
    A copy, a rewrite or a replaced file changes it; only silent corruption in place does not
    (``--verify`` hashes anyway)."""
    signature = {}
    for name, entry in _files(directory):
        stat = entry.stat()
        signature[name] = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
    return signature


def _seen_file(path: Path) -> Path:
    """Where the cheap manifest of the entry ``path`` is kept, beside it: ``<stage>/.<key>.seen``."""
    return path.with_name(f".{path.name}.seen")


def _remember(path: Path) -> None:
    """Record the cheap manifest of an entry whose files were just hashed and found right (a
    read-only store simply hashes again next time)."""
    try:
        atomic_write_json(_seen_file(path), _signature(path))
    except OSError:
        pass


def is_built(path: Path, fresh_since: float | None = None, expect: tuple[str, ...] = (),
             verify: bool = False) -> bool:
    """Complete, uncorrupted, holding the ``expect``ed files (an entry of an older layout does not)
    and (under --fresh) made after ``fresh_since``.

    The files are hashed on first sight, when their cheap manifest (size, mtime, inode) differs from
    the one recorded at the last hash, and with ``verify``; otherwise a lookup costs a stat per file.
    """
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if fresh_since is not None and manifest.get("created", 0) < fresh_since:
        return False
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(name in files for name in expect):
        return False
    if not verify:
        try:
            if json.loads(_seen_file(path).read_text()) == _signature(path):
                return True
        except (OSError, ValueError):
            pass
    if files != _file_checksums(path):
        return False
    _remember(path)
    return True


@dataclass
class BuildTask:
    """One artifact build, everything a local process or a SLURM job needs to run and publish it.

    Its claim (``record``, set when claimed) is its fencing token: the build runs in a work
    directory of that claim's own, ``<stage>/.<key>.work-<generation>``, and publishes only while
    the claim is still the one in force.
    """

    root: Path
    stage: str
    key: str
    build: Callable[[Path], None]
    manifest: dict  # stage, key, config, inputs, environment, code
    job: JobSpec | None
    fresh_since: float | None = None
    expect: tuple[str, ...] = ()  # files the entry must hold (``is_built``)
    record: claims.ClaimRecord | None = None  # our claim, once claimed

    @property
    def final(self) -> Path:
        return self.root / self.stage / self.key

    @property
    def claim(self) -> Path:
        """The base name of the key's claim files (``claims.claim_file`` adds the generation)."""
        return self.root / self.stage / f".{self.key}.claim"

    @property
    def claim_file(self) -> Path:
        return claims.claim_file(self.claim, self.record.generation)

    @property
    def work(self) -> Path:
        return self.root / self.stage / f".{self.key}.work-{self.record.generation}"

    @property
    def resumable(self) -> bool:
        return self.job is not None and self.job.resumable

    def describe(self) -> str:
        return f"{self.stage} {self.key[:8]}"

    def is_built(self) -> bool:
        return is_built(self.final, self.fresh_since, self.expect)

    def _older_work(self) -> list[tuple[int, Path]]:
        """The work directories of earlier claims of this key, (generation, path), newest first."""
        prefix = f".{self.key}.work-"
        found = []
        for path in self.final.parent.glob(f"{prefix}*"):
            generation = path.name[len(prefix):].split(".")[0]
            if generation.isdigit() and int(generation) < self.record.generation:
                found.append((int(generation), path))
        return sorted(found, reverse=True)

    def _stale(self, path: Path) -> bool:
        """From before --fresh: not to be continued."""
        return self.fresh_since is not None and path.stat().st_mtime < self.fresh_since

    def prepare(self) -> None:
        """Our claim's work directory: kept if this claim built in it before and the build resumes
        (a requeued job); else, for a resumable build, a copy of the newest earlier claim's (a dead
        holder's epoch checkpoints; copied, not moved, so that a holder wrongly judged dead cannot
        write into ours); else empty. Earlier claims' directories are removed, and so are the
        temporaries of atomic writes a killed holder left."""
        own = self.work
        if own.exists() and (not self.resumable or self._stale(own)):
            shutil.rmtree(own)
        older = self._older_work()
        if not own.exists() and self.resumable:
            previous = next((path for _, path in older if not path.name.endswith(ADOPTING) and not self._stale(path)),
                            None)
            if previous is not None:
                adopting = own.with_name(own.name + ADOPTING)
                shutil.rmtree(adopting, ignore_errors=True)
                shutil.copytree(previous, adopting, symlinks=True)
                os.rename(adopting, own)  # whole or not at all: a copy cut short is never continued
        own.mkdir(parents=True, exist_ok=True)
        for partial in [p for p in own.rglob("*") if is_temporary(p.name) and p.is_file()]:
            partial.unlink()  # a write cut short by the kill that ended the previous holder
        for _, path in older:
            shutil.rmtree(path, ignore_errors=True)

    def publish(self, built_by: dict) -> bool:
        """Write the manifest (with who built it) and rename the work directory into place, if our
        claim is still in force (the fencing check); False if it is not (a successor builds)."""
        # built during a --fresh session means fresh, whatever the clock of the node that built it says
        created = max(time.time(), self.fresh_since or 0.0)
        manifest = {**self.manifest, "created": created, "built_by": {**built_by, "claim": self.record.token},
                    "files": _file_checksums(self.work)}
        (self.work / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if not claims.holds(self.claim, self.record):
            shutil.rmtree(self.work, ignore_errors=True)
            return False
        if self.final.exists() and not self.is_built():  # corrupt, stale or of an older layout: replace it
            aside = self.final.with_name(f".{self.key}.replaced-{self.record.token}")
            os.rename(self.final, aside)
            shutil.rmtree(aside)
        try:
            os.rename(self.work, self.final)
        except OSError:  # published meanwhile (a rename onto a non-empty directory fails): keep that one
            shutil.rmtree(self.work, ignore_errors=True)
            return True
        _remember(self.final)  # its checksums are those of the files just written
        return True

    def discard(self) -> None:
        """After a failed build: keep what a resumable build can continue from, drop the rest."""
        if not self.resumable:
            shutil.rmtree(self.work, ignore_errors=True)


class ArtifactStore:
    """Get-or-build cache of stage outputs under ``root``.

    ``fresh_since`` (a UNIX time, set by ``--fresh``) makes entries published before that moment
    count as absent, so a fresh session rebuilds each artifact once and then shares it.
    ``executor`` runs the builds that name a ``JobSpec`` (default: in this process); ``session``
    tells this store's failed jobs from older ones, which are retried. ``verify`` (``--verify``)
    hashes every entry's files the first time this store looks it up, whatever its cheap manifest says.
    """

    def __init__(self, root: Path, fresh_since: float | None = None, executor: Executor | None = None,
                 session: str | None = None, verify: bool = False):
        self.root = Path(root)
        self.fresh_since = fresh_since
        self.executor = executor or LOCAL
        self.session = session or uuid.uuid4().hex
        self.verify = verify
        self._verified: set[Path] = set()
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

    def _is_built(self, path: Path, expect: tuple[str, ...] = ()) -> bool:
        verify = self.verify and path not in self._verified
        built = is_built(path, self.fresh_since, expect, verify=verify)
        if built and verify:
            self._verified.add(path)
        return built

    def find(self, stage: str, config: Mapping, inputs: Mapping[str, Artifact] | None = None,
             code: str | None = None) -> Artifact | None:
        """The artifact for (stage, config, inputs) if it is built (and fresh enough), else None.
        ``code``: the module whose build function builds it (default: the caller's)."""
        artifact = self._artifact(stage, config, inputs, code or _caller_module())
        return artifact if self._is_built(artifact.path) else None

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
        code: str | None = None,
    ) -> Artifact:
        """The artifact for (stage, config, inputs), built by ``build(out_dir)`` if absent.

        ``job`` marks a heavy build that the store's executor may run elsewhere (a SLURM job);
        without it the build runs in this process. ``expect``: files the entry must hold; an entry
        without them (written by an older layout of the stage) is rebuilt under the key's claim,
        as a corrupt one is. The key covers the code of ``build``'s module (``core.fingerprint``), or
        of module ``code`` where the build is written elsewhere for that module's stage.
        """
        code = code or build_module(build)
        artifact = self._artifact(stage, config, inputs, code)
        key = artifact.key
        if self._is_built(artifact.path, expect):
            return artifact
        manifest = {"stage": stage, "key": key, "config": artifact.config,
                    "inputs": {name: art.key for name, art in (inputs or {}).items()},
                    "environment": self._environment, "code": {"module": code, "fingerprint": code_fingerprint(code)}}
        task = BuildTask(self.root.absolute(), stage, key, build, manifest, job, self.fresh_since, expect)
        task.final.parent.mkdir(parents=True, exist_ok=True)
        self._obtain(task, self.executor if job is not None else LOCAL)
        return artifact

    def _obtain(self, task: BuildTask, executor: Executor) -> None:
        """Build under the key's claim, or wait for the claim's holder; take the next generation of
        the claim after a dead holder (exactly one waiter gets it)."""
        watch = claims.StaleWatch()
        seen_alive: set[str] = set()
        while not self._is_built(task.final, task.expect):
            found = claims.current(task.claim)  # a read, not a write, for each look while another builds
            generation, holder = found if found is not None else (0, None)
            if found is not None and holder is None:  # unreadable: damaged by hand? dead once quiet for long
                if watch.quiet_for(claims.claim_file(task.claim, generation), f"unreadable-{generation}") \
                        < watch.stale_after:
                    time.sleep(PROCESS_POLL_S)
                    continue
            elif holder is not None and holder.state != claims.RELEASED:
                status = holder_status(claims.claim_file(task.claim, generation), holder, watch)
                if status.alive:
                    seen_alive.add(holder.token)
                    executor.wait(task, status)
                    continue
                if status.error and (holder.token in seen_alive or holder.session == self.session):
                    raise JobFailed(status.error)
                # crashed, or failed before this session: build it again (resuming if it can)
            record = claims.ClaimRecord(task.stage, task.key, self.session, executor.name, generation=generation + 1)
            if not claims.try_claim(task.claim, record):
                continue  # another waiter took this generation: look at its holder
            task.record = record
            if self._is_built(task.final, task.expect):  # published while we looked
                claims.release_claim(task.claim, record)
                return
            if executor.start(task, record):
                return  # built and published here


def store_from_args(args) -> ArtifactStore:
    """A command's ``--store-dir`` store, checked writable before any work, building through its
    ``--executor`` options (``core.executor_options.add_executor_options``), hashing each entry on
    first lookup with ``--verify``."""
    from pynqrepro.core.atomic import check_writable
    from pynqrepro.core.executor_options import executor_from_args

    check_writable(args.store_dir, "--store-dir", directory=True)
    return ArtifactStore(args.store_dir, executor=executor_from_args(args), verify=getattr(args, "verify", False))
