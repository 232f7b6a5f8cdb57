"""Recording experiment rows during a test session.

Every ``Table.add`` rewrites that test's staging file at once (atomically), so a test that crashes
loses only its own unrecorded rows. At session end the controller merges the staging files into
``reports/`` (see ``pynqrepro.core.report_files``); xdist workers only ever write their own files.
"""

import datetime
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_json

STAGING = ".staging"
REFERENCE = "reference: "  # how a published figure's row begins its "source" column
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def is_reference_row(values: dict) -> bool:
    """Whether a recorded row is a published figure (``Table.add_reference``) rather than ours."""
    return str(values.get("source", "")).startswith(REFERENCE)


def new_session_id() -> str:
    """Sortable by start time, unique across machines."""
    return datetime.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class SessionInfo:
    """What every row of one pytest session shares."""

    session: str
    scale: str
    board: str
    environment: dict
    started: str = field(default_factory=lambda: datetime.datetime.now().isoformat(timespec="seconds"))

    @property
    def date(self) -> str:
        return self.started[:10]


class Table:
    """One experiment's report table, as seen by one test."""

    def __init__(self, recorder: "Recorder", name: str, title: str, notes: list[str], plot: str | None,
                 summary: str | None = None, group_by: str | None = None, headers: dict | None = None):
        self._recorder = recorder
        self.name = name
        self.meta = {"title": title, "notes": list(notes), "plot": plot, "summary": summary, "group_by": group_by,
                     "headers": dict(headers or {})}

    def add(self, row: dict, config: dict | None = None, seed: int | None = None) -> None:
        """Record one row (displayed columns in order) plus its full configuration and seed."""
        self._recorder.add_row(self, dict(row), config or {}, seed)

    def add_reference(self, reference, row: dict, config: dict | None = None, source: str | None = None) -> None:
        """Record a published figure beside ours: ``row`` plus the "source" column
        "reference: <source>", the reference record's own source unless ``source`` names it more
        precisely (e.g. which of the study's runs)."""
        self.add({**row, "source": f"{REFERENCE}{source or reference.source}"}, config=config)


class Recorder:
    """The rows one test records, persisted to its own staging file."""

    def __init__(self, reports_dir: Path, info: SessionInfo, nodeid: str):
        self.reports_dir = Path(reports_dir)
        self.info = info
        self.nodeid = nodeid
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:16]
        self._path = self.reports_dir / STAGING / info.session / f"{digest}.json"
        self._tables: dict[str, dict] = {}
        self._rows: list[dict] = []

    def table(self, name: str, title: str, notes: list[str] = (), plot: str | None = None,
              summary: str | None = None, group_by: str | None = None, headers: dict | None = None) -> Table:
        """The table ``reports/<name>.md``; ``plot`` is an optional "module:function" drawing
        figures from all of the table's rows at merge time. Presentation of the Markdown only (CSV
        and JSON keep every row and column): ``summary``, a "module:function" giving the first
        screen (Markdown lines answering the report's question, from all rows' values, rendered
        before the notes and the detail); ``group_by``, a column whose values each get their own
        detail table; ``headers``, shorter Markdown headers for long column names."""
        if not _NAME.match(name):
            raise ValueError(f"report name {name!r} must be lower-case letters, digits, '_' or '-'")
        table = Table(self, name, title, list(notes), plot, summary, group_by, headers)
        self._tables[name] = table.meta
        return table

    def figure_path(self, filename: str) -> Path:
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        return self.reports_dir / filename

    def add_row(self, table: Table, values: dict, config: dict, seed: int | None) -> None:
        self._rows.append({
            "table": table.name,
            "test": self.nodeid,
            "session": self.info.session,
            "scale": self.info.scale,
            "board": self.info.board,
            "recorded": datetime.datetime.now().isoformat(timespec="seconds"),
            "seed": seed,
            "config": config,
            "values": values,
        })
        atomic_write_json(self._path, {
            "session": {**vars(self.info), "date": self.info.date},
            "tables": self._tables,
            "rows": self._rows,
        })
