"""Merging recorded rows into ``reports/``: Markdown (tabulate), CSV and JSON with provenance.

The JSON file of a report is its source of truth: a merge replaces the rows of every test that
ran again (same test, scale and board) and keeps all others, so running one experiment never
loses another's rows. Each file is written atomically.
"""

import csv
import datetime
import importlib
import io
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from pynqrepro.core.atomic import atomic_write_json, atomic_write_text
from pynqrepro.core.logs import warn
from pynqrepro.core.results import STAGING

HEADER_PACKAGES = ("torch", "brevitas", "qonnx", "finn-plus")
ROW_IDENTITY = ("test", "scale", "board")


def _identity(row: dict) -> tuple:
    return tuple(row[k] for k in ROW_IDENTITY)


def _load_staging(reports_dir: Path) -> tuple[list[Path], dict, dict, dict]:
    """All staged sessions (oldest first): their dirs, sessions, table metadata and rows by table."""
    sessions, tables, rows = {}, {}, defaultdict(list)
    staged = sorted(p for p in (reports_dir / STAGING).glob("*") if p.is_dir())
    for session_dir in staged:
        for path in sorted(session_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # a file torn by a crash mid-write cannot exist (atomic), but be safe
            sessions[data["session"]["session"]] = data["session"]
            tables.update(data["tables"])
            for row in data["rows"]:
                rows[row["table"]].append(row)
    return staged, sessions, tables, rows


def _natural(text: str) -> list:
    """Sort key that puts test[2w2a] before test[10w10a]."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Old rows minus those of tests that ran again (same test, scale, board), plus the new rows;
    ordered by scale, board and test name (stable within a test), whatever order workers finished."""
    rerun = {_identity(row) for row in new}
    merged = [row for row in old if _identity(row) not in rerun] + new
    return sorted(merged, key=lambda row: (row["scale"], row["board"], _natural(row["test"])))


def _format(value) -> object:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.0f}"
    if value is None:
        return ""
    return value


def _columns(rows: list[dict]) -> list[str]:
    columns = []
    for row in rows:
        for key in row["values"]:
            if key not in columns:
                columns.append(key)
    return columns


def _header_line(rows: list[dict], runs: dict) -> str:
    def distinct(values):
        return ", ".join(dict.fromkeys(str(v) for v in values))

    used = [runs[s] for s in dict.fromkeys(r["session"] for r in rows) if s in runs]
    commits = distinct(
        f"{r['environment']['git']['commit']}{'+dirty' if r['environment']['git']['dirty'] else ''}" for r in used
    )
    packages = ", ".join(
        f"{name} {distinct(r['environment']['packages'].get(name) for r in used)}" for name in HEADER_PACKAGES
    )
    return (
        f"_scale {distinct(r['scale'] for r in rows)} · board {distinct(r['board'] for r in rows)} · "
        f"commit {commits} · {distinct(r['date'] for r in used)} · {packages}_"
    )


def render_markdown(name: str, meta: dict, rows: list[dict], runs: dict) -> str:
    columns = _columns(rows)
    body = [[_format(row["values"].get(c)) for c in columns] for row in rows]
    parts = [f"# {meta['title']}", "", _header_line(rows, runs), ""]
    if meta.get("notes"):
        parts += [f"- {note}" for note in meta["notes"]] + [""]
    parts += [tabulate(body, headers=columns, tablefmt="github", disable_numparse=True), ""]
    parts += [f"Machine-readable: [{name}.csv]({name}.csv), [{name}.json]({name}.json) (full provenance).", ""]
    return "\n".join(parts)


PROVENANCE_COLUMNS = ("test", "scale", "board", "date", "commit", "seed", "config")


def render_csv(rows: list[dict], runs: dict) -> str:
    """The table's columns, then each row's provenance; a provenance column whose name the table
    uses too (e.g. a per-row ``board``) is written as ``run <name>``, so neither hides the other."""
    columns = _columns(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns + [f"run {name}" if name in columns else name for name in PROVENANCE_COLUMNS])
    for row in rows:
        run = runs.get(row["session"], {})
        writer.writerow(
            [row["values"].get(c, "") for c in columns]
            + [row["test"], row["scale"], row["board"], run.get("date", ""),
               run.get("environment", {}).get("git", {}).get("commit", ""), row["seed"],
               json.dumps(row["config"], sort_keys=True)]
        )
    return out.getvalue()


def _draw_plot(target: str, rows: list[dict], reports_dir: Path) -> None:
    module_name, function_name = target.split(":")
    draw = getattr(importlib.import_module(module_name), function_name)
    draw([row["values"] for row in rows], reports_dir)


def write_report(reports_dir: Path, name: str, meta: dict, rows: list[dict], runs: dict) -> None:
    atomic_write_json(reports_dir / f"{name}.json", {"name": name, **meta, "runs": runs, "rows": rows})
    atomic_write_text(reports_dir / f"{name}.csv", render_csv(rows, runs))
    atomic_write_text(reports_dir / f"{name}.md", render_markdown(name, meta, rows, runs))
    if meta.get("plot"):
        try:
            _draw_plot(meta["plot"], rows, reports_dir)
        except Exception as exc:  # a broken figure must not cost the tables
            warn(f"plot {meta['plot']} for {name} failed: {exc}")


def _is_report(data) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("title"), str) and isinstance(data.get("rows"), list)
            and isinstance(data.get("runs"), dict))


def _keep_aside(path: Path) -> Path:
    """Rename a file that is not a readable report out of the ``*.json`` namespace; never delete it."""
    kept = path.with_name(f"{path.name}.not-a-report-{datetime.datetime.now():%Y%m%dT%H%M%S%f}")
    path.rename(kept)
    return kept


def _warn_kept_aside(moved: list[tuple[Path, Path]]) -> None:
    if moved:
        warn("not pynqrepro reports (foreign or corrupt JSON), kept aside unchanged: "
             + "; ".join(f"{old.name} -> {new.name}" for old, new in moved))


def write_index(reports_dir: Path) -> list[tuple[Path, Path]]:
    """``index.md`` linking every report; JSON files that are not reports are kept aside (returned)."""
    lines = ["# pynqrepro reports", "",
             "Regenerated tables of 'Optimizing Neural Networks for PYNQ'; references are labelled as such.", ""]
    entries, moved = [], []
    for path in sorted(reports_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None
        if not _is_report(data):
            moved.append((path, _keep_aside(path)))
            continue
        entries.append([f"[{data['title']}]({path.stem}.md)", len(data["rows"]),
                        ", ".join(sorted({run.get("date", "") for run in data["runs"].values()}))])
    lines.append(tabulate(entries, headers=["report", "rows", "run on"], tablefmt="github"))
    figures = sorted(p.name for p in reports_dir.glob("*.png"))
    if figures:
        lines += ["", "## Figures", ""] + [f"- [{name}]({name})" for name in figures]
    atomic_write_text(reports_dir / "index.md", "\n".join(lines) + "\n")
    return moved


def _load_existing(path: Path, moved: list) -> dict:
    """The report's current rows; a file that is not a readable report is kept aside (never lost,
    recorded in ``moved``) and the report starts afresh."""
    if not path.exists():
        return {"runs": {}, "rows": []}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    if _is_report(data):
        return data
    moved.append((path, _keep_aside(path)))
    return {"runs": {}, "rows": []}


def merge_reports(reports_dir: Path, index: bool = False) -> list[str]:
    """Fold every staged session into the reports (and rewrite the index when they changed, it is
    missing or ``index``); returns the names of the reports rewritten."""
    reports_dir = Path(reports_dir)
    staged, sessions, tables, new_rows = _load_staging(reports_dir)
    moved = []
    for name, rows in new_rows.items():
        old = _load_existing(reports_dir / f"{name}.json", moved)
        merged = _merge_rows(old["rows"], rows)
        used = {row["session"] for row in merged}
        runs = {s: r for s, r in {**old["runs"], **sessions}.items() if s in used}
        write_report(reports_dir, name, tables[name], merged, runs)
    if new_rows or index or not (reports_dir / "index.md").exists():
        moved += write_index(reports_dir)
    _warn_kept_aside(moved)
    for session_dir in staged:
        shutil.rmtree(session_dir, ignore_errors=True)
    return sorted(new_rows)
