"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import json
import os
import tempfile
from pathlib import Path

from pynqrepro.core.errors import UserError


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the anchor, or ".", for a path nothing of which exists)."""
    return next(p for p in (path, *path.parents) if p.exists() or p == Path(p.anchor or "."))


def ensure_writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` if needed and check it is writable, else a one-line UserError."""
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():  # mkdir's own words ("File exists", "Not a directory") point nowhere
        if existing == path:
            raise UserError(f"{what} {path} is a file, not a directory: pass a directory path")
        raise UserError(f"{what} {path} is not writable: {existing} is a file, not a directory: choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"{what} {path} is not writable ({exc.strerror}): choose a writable directory") from None
    return path


def check_writable(path: Path, what: str, directory: bool = False) -> Path:
    """Before any work starts: ``path`` can be written as a file (or used as a directory), its
    missing parents created; otherwise a one-line UserError naming ``what``. Leaves nothing behind
    (it makes and removes an empty directory where the first missing one would go)."""
    path = Path(path)
    kind = "directory" if directory else "file"
    if path.exists() and path.is_dir() != directory:
        raise UserError(f"{what} {path} is {'a file' if directory else 'a directory'}, not a {kind}: "
                        f"pass a {kind} path")
    if not directory and path.exists() and not path.is_file():  # the atomic rename would put a file in its place
        raise UserError(f"{what} {path} is not a regular file (a device, pipe or socket), which writing would "
                        f"replace: pass a file path")
    existing = _nearest_existing(path)
    if existing != path and not existing.is_dir():
        raise UserError(f"{what} {path} cannot be created: {existing} is a file, not a directory: "
                        f"choose another path")
    if not os.access(existing if existing.is_dir() else existing.parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} is not writable (no write permission in {existing}): "
                        f"choose a writable location")
    try:  # permissions say yes, the file system may still refuse (/proc, a read-only mount): try it
        os.rmdir(tempfile.mkdtemp(dir=existing if existing.is_dir() else existing.parent, prefix=".write-test-"))
    except OSError as exc:
        verb = "cannot be created" if existing != path else "is not writable"
        raise UserError(f"{what} {path} {verb} ({exc.strerror} in {existing}): choose a writable location") from None
    return path


TEMPORARY_SUFFIX = ".tmp"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of atomic_write's temporaries (left behind by a killed writer)."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


def current_umask() -> int:
    """The process's umask: Linux shows it in /proc; elsewhere reading it means setting it (and
    straight back), which another thread could see for an instant."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``; the file
    gets the permissions ``open`` would give it (0666 less the umask), as ordinary tools do."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide the file from the group
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
