"""The SSH side of the board stage: exact ssh/scp argv, built here and run by the caller.

Login details (host, user, key) live only in ``BoardLogin`` and these argv lists: nothing in
this package puts them into results or reports.
"""

import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pynqrepro.core.errors import UserError

REMOTE_ROOT = "pynqrepro-deploy"  # relative to the board user's home
# PYNQ >= 2.7 keeps pynq (and finn-plus-driver) in a venv; older images use the system python3.
# The driver maps /dev/mem and loads bitstreams: root, via sudo without a password prompt.
ACTIVATE = "if [ -f /etc/profile.d/pynq_venv.sh ]; then . /etc/profile.d/pynq_venv.sh; fi"


@dataclass(frozen=True)
class BoardLogin:
    host: str
    user: str = "xilinx"
    key: str | None = None

    def __post_init__(self):
        if not self.host:
            raise UserError("no board host: pass --board-host HOST or set PYNQ_BOARD_HOST")
        if any(c.isspace() or c == "@" for c in self.host + self.user):
            raise UserError("board host and user must be plain names without spaces or '@': "
                            "pass --board-host HOST --board-user USER")

    def check_key(self) -> None:
        """Before connecting: a key that was named exists (ssh would only say "Permission denied")."""
        key = Path(self.key).expanduser() if self.key else None
        if key is not None and not key.is_file():
            what = ("is a directory" if key.is_dir() else "is not a regular file (a device, pipe or socket)"
                    if key.exists() else "does not exist")
            raise UserError(f"SSH key {self.key} {what}: pass --board-key PRIVATE_KEY_FILE "
                            f"(or set PYNQ_BOARD_KEY), or leave it out to use ssh's own keys")

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}"

    def options(self) -> list[str]:
        """Non-interactive: a missing key or host key fails at once instead of prompting."""
        key = ["-i", self.key] if self.key else []
        return ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20", *key]


def optional_login(host: str | None, user: str, key: str | None) -> BoardLogin | None:
    """The board login of a session or report, None without a host; checked as ``deploy`` checks it,
    before any work, so a bad host or key path is the same one-line error everywhere."""
    if not host:
        return None
    login = BoardLogin(host, user, key)
    login.check_key()
    return login


def remote_dir(package_name: str) -> str:
    return str(PurePosixPath(REMOTE_ROOT) / package_name)


def ssh_argv(login: BoardLogin, command: str) -> list[str]:
    return ["ssh", *login.options(), login.target, command]


def copy_to_board_argv(login: BoardLogin, local_dir) -> list[str]:
    """scp the staged package folder into ~/pynqrepro-deploy/ (it arrives under its own name)."""
    return ["scp", "-r", "-q", *login.options(), str(local_dir), f"{login.target}:{REMOTE_ROOT}/"]


def fetch_reports_argv(login: BoardLogin, package_name: str, local_dir) -> list[str]:
    return ["scp", "-r", "-q", *login.options(), f"{login.target}:{remote_dir(package_name)}/report",
            str(local_dir)]


def prepare_command(package_name: str) -> str:
    """Fresh remote folder: a previous run's package or reports must not be read back."""
    target = shlex.quote(remote_dir(package_name))
    return f"mkdir -p {shlex.quote(REMOTE_ROOT)} && sudo -n rm -rf {target}"


def run_command(package_name: str, validate_batch: int, throughput_batch: int, repeats: int) -> str:
    """The shell line run on the board: FINN's driver via on_board.py, as root in PYNQ's Python."""
    runner = shlex.join(["python3", "on_board.py", "--report-dir", "report",
                         "--validate-batch", str(validate_batch), "--throughput-batch", str(throughput_batch),
                         "--repeats", str(repeats)])
    inner = f"{ACTIVATE}; mkdir -p report && {runner}"
    return f"cd {shlex.quote(remote_dir(package_name))} && sudo -n bash -c {shlex.quote(inner)}"
