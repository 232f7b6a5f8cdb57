"""Progress on the terminal: one line, written when it changes but not more often than asked."""

import time

from pynqrepro.core.logs import user_stream


def write_to_user(line: str) -> None:
    print(line, file=user_stream(), flush=True)


class ProgressLine:
    """Job progress as one line through ``write`` (None: nowhere, as on an xdist worker), written
    when it changes but at most every ``every`` seconds, so that a long reproduction prints a few
    dozen lines, not a wall of logs."""

    def __init__(self, write, every: float = 30.0):
        self._write = write
        self._every = every
        self._shown, self._pending = None, None
        self._shown_at = self._offered_at = -float("inf")

    def due(self) -> bool:
        """Whether a line offered now could be written: a caller whose line costs work (a question
        to SLURM per job) makes it only then."""
        return self._write is not None and time.monotonic() - self._offered_at >= self._every

    def __call__(self, line: str) -> None:
        self._offered_at = time.monotonic()
        if self._write is None:
            return
        if line != self._shown:
            self._pending = line
        if self._pending is not None and time.monotonic() - self._shown_at >= self._every:
            self.flush()

    def flush(self) -> None:
        """Write the latest line if it has not been written (at the end of a session)."""
        if self._pending is not None:
            self._write(self._pending)
            self._shown, self._pending, self._shown_at = self._pending, None, time.monotonic()
