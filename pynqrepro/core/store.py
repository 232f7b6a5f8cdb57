"""Content-keyed artifact store through which stages hand each other checkpoints, ONNX models,
folding configs and reports.

An artifact's key hashes everything that determines it: the stage name, its full configuration,
the keys of its input artifacts and the versions of the libraries that shape it. A changed setting,
seed or upstream artifact therefore gives a new key, never a stale hit. Builds happen in a private
temporary directory that is renamed into place only when complete, under a per-key file lock, so two
xdist workers asking for the same artifact build it once.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from pynqrepro.core.provenance import package_versions

MANIFEST = "_artifact.json"
KEY_PACKAGES = ("torch", "brevitas", "qonnx", "finn-plus", "pynqrepro")
STORE_FORMAT = 1


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


class ArtifactStore:
    """Get-or-build cache of stage outputs under ``root``.

    ``fresh_since`` (a UNIX time, set by ``--fresh``) makes entries published before that moment
    count as absent, so a fresh session rebuilds each artifact once and then shares it.
    """

    def __init__(self, root: Path, fresh_since: float | None = None):
        self.root = Path(root)
        self.fresh_since = fresh_since
        self._environment = {name: package_versions().get(name) for name in KEY_PACKAGES}

    def key(self, stage: str, config: Mapping, inputs: Mapping[str, Artifact] | None = None) -> str:
        material = {
            "format": STORE_FORMAT,
            "stage": stage,
            "config": config,
            "inputs": {name: art.key for name, art in sorted((inputs or {}).items())},
            "environment": self._environment,
        }
        return hashlib.sha256(canonical_json(material).encode()).hexdigest()[:24]

    def path_for(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def get_or_build(
        self,
        stage: str,
        config: Mapping,
        build: Callable[[Path], None],
        inputs: Mapping[str, Artifact] | None = None,
    ) -> Artifact:
        """The artifact for (stage, config, inputs), built by ``build(out_dir)`` if absent."""
        key = self.key(stage, config, inputs)
        final = self.path_for(stage, key)
        artifact = Artifact(stage, key, final, json.loads(canonical_json(config)))
        if self._valid(final):
            return artifact
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock"):
            if self._valid(final):  # another process built it while we waited
                return artifact
            work = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}.building-"))
            try:
                build(work)
                manifest = {
                    "stage": stage,
                    "key": key,
                    "config": artifact.config,
                    "inputs": {name: art.key for name, art in (inputs or {}).items()},
                    "environment": self._environment,
                    "created": time.time(),
                    "files": _file_checksums(work),
                }
                (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
                if final.exists():  # corrupt or stale entry: replace it
                    shutil.rmtree(final)
                os.rename(work, final)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
        return artifact

    def _valid(self, path: Path) -> bool:
        """Complete, uncorrupted and (under --fresh) made in this session."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            return False
        if self.fresh_since is not None and manifest.get("created", 0) < self.fresh_since:
            return False
        return manifest.get("files") == _file_checksums(path)
