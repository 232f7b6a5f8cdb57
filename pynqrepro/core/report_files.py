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
import textwrap
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from pynqrepro.core.atomic import atomic_write_json, atomic_write_text
from pynqrepro.core.logs import warn
from pynqrepro.core.results import STAGING

HEADER_PACKAGES = ("torch", "brevitas", "qonnx", "finn-plus")
ROW_IDENTITY = ("test", "scale", "board")
NOTE_WIDTH = 110  # characters per line of a note


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
    if isinstance(value, bool):
        return "yes" if value else "no"
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


def _call(target: str):
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _summary(meta: dict, rows: list[dict]) -> list[str]:
    """The table's first screen (``Recorder.table(summary=...)``): Markdown lines from its rows."""
    if not meta.get("summary"):
        return []
    try:
        return list(_call(meta["summary"])([row["values"] for row in rows])) + [""]
    except Exception as exc:  # a broken summary must not cost the tables
        warn(f"summary {meta['summary']} failed: {exc}")
        return []


LONG_CELL = 48  # characters: a longer text cell becomes a numbered note under its table


def _detail(meta: dict, rows: list[dict]) -> list[str]:
    """The rows as one table, or one per value of ``group_by`` (that column, and columns empty in
    the group, left out of each); a
    text cell longer than ``LONG_CELL`` is written once as a numbered note under the table, so
    the table's lines stay readable."""
    headers, group_by = meta.get("headers") or {}, meta.get("group_by")
    numbers: dict[str, int] = {}  # long text -> its note number, shared by the document's tables

    def cell(value) -> object:
        value = _format(value)
        if not isinstance(value, str) or len(value) <= LONG_CELL:
            return value
        return f"[{numbers.setdefault(value, len(numbers) + 1)}]"

    def table(group: list[dict], leave_out: str | None = None) -> list[str]:
        first = len(numbers)
        columns = [c for c in _columns(group) if c != leave_out  # and not empty throughout the group
                   and any(row["values"].get(c) not in (None, "") for row in group)]
        body = [[cell(row["values"].get(c)) for c in columns] for row in group]
        lines = [tabulate(body, headers=[headers.get(c, c) for c in columns], tablefmt="github",
                          disable_numparse=True), ""]
        new = [(n, text) for text, n in numbers.items() if n > first]
        return lines + ([f"[{n}] {text}  " for n, text in new] + [""] if new else [])

    if not group_by:
        return table(rows)
    groups: dict = {}
    for row in rows:
        groups.setdefault(str(row["values"].get(group_by, "")), []).append(row)
    out = []
    for value, group in groups.items():
        out += [f"## {headers.get(group_by, group_by)}: {value or '(none)'}", ""] + table(group, group_by)
    return out


def render_markdown(name: str, meta: dict, rows: list[dict], runs: dict) -> str:
    parts = [f"# {meta['title']}", "", _header_line(rows, runs), ""]
    parts += _summary(meta, rows)
    if meta.get("notes"):  # wrapped: readable as text too (Markdown joins the lines)
        parts += [_wrap(f"- {note}") for note in meta["notes"]] + [""]
    parts += _detail(meta, rows)
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
    _call(target)([row["values"] for row in rows], reports_dir)


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


SKIPPED = ".skipped"  # the last pytest session's skip reasons (JSON), kept for later index rewrites
DESIGN_SPACE, FOLDING = "design_space", "folding"  # the reports the recommendations are read from


def _scales_line(reports: dict) -> str:
    """Which scales (and their datasets) the reports' rows ran at."""
    from pynqrepro.core.scale import SCALES

    scales = sorted({row["scale"] for data in reports.values() for row in data["rows"]})

    def dataset(name: str) -> str:
        scale = SCALES.get(name.removesuffix("-dry"))
        return f"{name} ({scale.dataset}{', dry run' if name.endswith('-dry') else ''})" if scale else name

    return "Scale: " + (", ".join(dataset(s) for s in scales) or "nothing recorded yet") + \
        ". Rows at the smoke scale are the study's pipeline on scikit-learn's digits, not CIFAR-10: " \
        "compare their hardware figures, not their accuracy, with the study's." * ("smoke" in scales)


def _skipped_lines(reports_dir: Path) -> list[str]:
    """The last pytest session's skipped tests, one line per reason (``merge_reports(skipped=...)``)."""
    try:
        skipped = json.loads((reports_dir / SKIPPED).read_text())
    except (OSError, ValueError):
        return []
    by_reason: dict = {}
    for test, reason in skipped.get("tests", {}).items():
        by_reason.setdefault(reason, []).append(test)
    lines = []
    for reason, tests in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        files = sorted({t.split("::")[0].split("/")[-1].removesuffix(".py") for t in tests})
        lines.append(f"- Skipped ({len(tests)}: {', '.join(files)}): {reason}")
    if skipped.get("markexpr"):
        lines.append(f"- Selected with -m \"{skipped['markexpr']}\": the stages it leaves out did not run.")
    return [f"- Last experiment session: {skipped.get('ran', 0)} ran, {len(skipped.get('tests', {}))} skipped."] + lines


def _recommended_lines(reports: dict) -> list[str]:
    """The recommended design per board: the design-space report's, else the folding report's."""
    if DESIGN_SPACE in reports:
        rows = [r["values"] for r in reports[DESIGN_SPACE]["rows"] if r["values"].get("recommended")]
        if rows:
            keys = ["board", "recommended", "folding JSON", "checkpoint key"]
            return ["Recommended designs ([design_space.md](design_space.md)):", "",
                    tabulate([[r.get(k, "") for k in keys] for r in rows], headers=keys, tablefmt="github")]
    if FOLDING in reports:
        rows = [r["values"] for r in reports[FOLDING]["rows"] if r["values"].get("recommended") == "yes"]
        if rows:
            keys = ["board", "W/A", "method", "est. fps", "folding JSON"]
            return ["Recommended folding per board and bit width (fastest whose whole design fits the default "
                    "budget; accuracy: [training.md](training.md); more in [folding.md](folding.md)):", "",
                    tabulate([[f"{r[k]:,.0f}" if k == "est. fps" else r.get(k, "") for k in keys] for r in rows],
                             headers=["board", "W/A", "method", "fps", "folding JSON"], tablefmt="github",
                             disable_numparse=True)]
    return ["No recommended design yet: run experiments/test_folding.py (or experiments/test_design_space.py)."]


def _at_a_glance(reports_dir: Path, reports: dict) -> list[str]:
    ran = ", ".join(f"{name} ({len(data['rows'])} rows)" for name, data in reports.items()) or "nothing yet"
    bullets = [f"- {_scales_line(reports)}", f"- Ran: {ran}."] + _skipped_lines(reports_dir)
    return (["## Results at a glance", ""] + [_wrap(b) for b in bullets] + [""] + _recommended_lines(reports) + [""])


def _wrap(bullet: str) -> str:
    """A Markdown list item in lines of ``NOTE_WIDTH`` (Markdown joins them)."""
    return textwrap.fill(bullet, NOTE_WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)


def write_index(reports_dir: Path) -> list[tuple[Path, Path]]:
    """``index.md``: results at a glance (scale and dataset, what ran, what the last session
    skipped and why, the recommended design per board), then every report; JSON files that are
    not reports are kept aside (returned)."""
    lines = ["# pynqrepro reports", "",
             "Regenerated tables of 'Optimizing Neural Networks for PYNQ'; references are labelled as such.", ""]
    entries, moved, reports = [], [], {}
    for path in sorted(reports_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None
        if not _is_report(data):
            moved.append((path, _keep_aside(path)))
            continue
        reports[path.stem] = data
        entries.append([f"[{data['title']}]({path.stem}.md)", len(data["rows"]),
                        ", ".join(sorted({run.get("date", "") for run in data["runs"].values()}))])
    lines += _at_a_glance(reports_dir, reports) + ["## Reports", ""]
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


def merge_reports(reports_dir: Path, index: bool = False, skipped: dict | None = None) -> list[str]:
    """Fold every staged session into the reports (and rewrite the index when they changed, it is
    missing, ``index`` or ``skipped``); returns the names of the reports rewritten. ``skipped``:
    the pytest session's experiments ({"tests": {nodeid: skip reason}, "ran": n, "markexpr": ...}),
    kept for the index's "at a glance"."""
    reports_dir = Path(reports_dir)
    if skipped is not None:
        atomic_write_json(reports_dir / SKIPPED, skipped)
        index = True
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
