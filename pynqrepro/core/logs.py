"""What the command line shows: its own lines, not third-party output.

FINN, qonnx, torch.onnx and Brevitas print progress, warnings and log records on stderr (dozens
of lines per HW model). While a command runs they go to a log file in the store instead (created
on the first line, ``<store>/logs/<command>-<time>-<pid>.log``), or nowhere for a command without
a store; ``-v/--verbose`` shows them as well. Each stage built in-process also keeps its own
output in ``<store>/logs/<stage>-<key>-<time>-<pid>.log``, under pytest too (``build_log``).
pynqrepro's own warnings and progress go to ``user_stream()``, the terminal's stderr, either way.
"""

import contextlib
import io
import os
import sys
import time
from pathlib import Path

_user = None  # the terminal's stderr while third-party output is diverted


def user_stream():
    """Where pynqrepro's own warnings and progress lines go."""
    return _user or sys.stderr


def warn(message: str) -> None:
    """One ``pynqrepro: warning: ...`` line for the user."""
    print(f"pynqrepro: warning: {message}", file=user_stream(), flush=True)


def log_file(store_dir: Path, name: str) -> Path:
    """``<store>/logs/<name>-<time>-<pid>.log``: a command's or a stage build's third-party output."""
    return Path(store_dir) / "logs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


class _Diverted(io.TextIOBase):
    """A stderr stand-in: lines go to the log file (opened on the first one) and, verbose, to the
    terminal; once the command is over (a handler kept by a library), to the terminal."""

    def __init__(self, path: Path | None, terminal, verbose: bool):
        self.path, self.terminal, self.verbose = path, terminal, verbose
        self._file = None
        self.active = True

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.active or self.verbose:
            self.terminal.write(text)
        if self.active and self.path is not None and text:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(text)
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()
        if self._file is not None:
            self._file.flush()

    def close_log(self) -> None:
        self.active = False
        if self._file is not None:
            self._file.close()


@contextlib.contextmanager
def third_party_output(path: Path | None, verbose: bool):
    """Divert stderr (third-party prints, warnings, log records) to the log file ``path`` (None:
    nowhere) while the block runs, and to the terminal too when ``verbose``."""
    global _user
    terminal, previous = sys.stderr, _user
    diverted = _Diverted(path, terminal, verbose)
    _user = terminal
    try:
        with contextlib.redirect_stderr(diverted):
            yield
    finally:
        _user = previous
        diverted.close_log()


@contextlib.contextmanager
def build_log(path: Path):
    """While a stage builds in this process: its stderr goes on where it went and also to ``path``
    (opened on the first line), so every build's FINN/torch output is kept in the store."""
    tee = _Diverted(path, sys.stderr, verbose=True)
    try:
        with contextlib.redirect_stderr(tee):
            yield
    finally:
        tee.close_log()
