"""``pynqrepro report``: merge recorded rows into ``reports/``; with a TABLE, first recompute that
table's rows with the functions its experiment calls (``pynqrepro.study.<module>``), recorded under
the experiment's test ids so they replace its earlier rows, as a rerun of the experiment would."""

import argparse
import dataclasses
import importlib

from pynqrepro.core.atomic import ensure_writable_dir
from pynqrepro.core.errors import UserError
from pynqrepro.core.options import (
    CommandParser,
    add_board_login_options,
    add_board_option,
    add_data_option,
    add_reports_option,
    add_scale_option,
    add_store_option,
    shorten,
)
from pynqrepro.core.report_files import merge_reports
from pynqrepro.study import TABLES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="merge recorded rows into reports/; with a TABLE, recompute its rows first",
        description=__doc__.replace("``", ""),
        usage="pynqrepro report [--reports-dir DIR]\n       pynqrepro report TABLE [options]  "
              "(options: pynqrepro report TABLE --help)")
    parser.add_argument("table", nargs="?", choices=sorted(TABLES), help="the report table to recompute (default: none, only merge)")
    parser.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    add_reports_option(parser.add_argument)
    parser.set_defaults(func=_report)


def table_parser(table: str, module, reports_dir) -> CommandParser:
    """The options of ``pynqrepro report TABLE``: the session's (as pytest's), and one filter per
    field of the table's cases."""
    parser = CommandParser(
        prog=f"pynqrepro report {table}",
        description=f"Recompute reports/{table}.md ({module.TITLE}) for the selected cases of "
                    f"{module.EXPERIMENT} and merge the rows in.")
    add_scale_option(parser.add_argument)
    add_board_option(parser.add_argument)
    add_data_option(parser.add_argument)
    add_store_option(parser.add_argument)
    add_reports_option(parser.add_argument, default=reports_dir)
    add_board_login_options(parser.add_argument)
    for field in dataclasses.fields(module.CASES[0]):
        default = sorted({getattr(case, field.name) for case in module.CASES})
        values = sorted({getattr(case, field.name) for case in report_cases(module)})
        more = sorted(set(values) - set(default))
        also = f"; also {', '.join(map(str, more))}" if more else ""
        parser.add_argument(f"--{field.name.replace('_', '-')}", nargs="+", type=type(values[0]), choices=values,
                            metavar=field.name.upper(),
                            help=f"only the cases with these values (default: all of {', '.join(map(str, default))}"
                                 f"{also})")
    return parser


def report_cases(module) -> tuple:
    """The cases ``pynqrepro report`` offers: the experiment's, or the module's ``REPORT_CASES``,
    a superset with values the experiment does not run (e.g. more boards)."""
    return getattr(module, "REPORT_CASES", module.CASES)


def selected_cases(module, options) -> list:
    """The offered cases whose every field is among the values given for it; a field given no
    values takes the experiment's (so no option at all selects exactly the experiment's cases)."""
    def wanted(case) -> bool:
        for f in dataclasses.fields(case):
            given = getattr(options, f.name)
            allowed = given if given is not None else {getattr(c, f.name) for c in module.CASES}
            if getattr(case, f.name) not in allowed:
                return False
        return True

    return [case for case in report_cases(module) if wanted(case)]


def record(table: str, argv: list[str], reports_dir) -> None:
    """Measure and tabulate the selected cases of ``table`` as its experiment does, then merge."""
    module = importlib.import_module(TABLES[table])
    options = table_parser(table, module, reports_dir).parse_args(argv)  # --help ends here, before the stages load
    from pynqrepro.board.remote import optional_login
    from pynqrepro.core.boards import get_board
    from pynqrepro.core.provenance import environment
    from pynqrepro.core.results import Recorder, SessionInfo, new_session_id
    from pynqrepro.core.scale import get_scale
    from pynqrepro.core.store import ArtifactStore
    from pynqrepro.pipeline import Setup

    cases = selected_cases(module, options)
    if not cases:
        filters = " ".join(f"--{f.name.replace('_', '-')} {' '.join(map(str, getattr(options, f.name)))}"
                           for f in dataclasses.fields(module.CASES[0]) if getattr(options, f.name) is not None)
        raise UserError(f"no {table} case matches {filters}: its cases are {shorten(c.id for c in report_cases(module))}"
                        f"; pick filters one case satisfies (pynqrepro report {table} --help)")
    login = optional_login(options.board_host, options.board_user, options.board_key)
    ensure_writable_dir(options.reports_dir, "--reports-dir")
    ensure_writable_dir(options.store_dir, "--store-dir")
    setup = Setup(get_scale(options.scale), get_board(options.board),
                  ArtifactStore(options.store_dir, verify=options.verify), options.data_dir, login,
                  options.reports_dir)
    session = SessionInfo(new_session_id(), setup.scale.name, setup.board.name, environment())
    try:
        for case in cases:
            results = Recorder(options.reports_dir, session, f"{module.EXPERIMENT}[{case.id}]")
            module.tabulate(results, setup, module.measure(setup, case))
            print(f"{table} [{case.id}]: recorded")
    finally:  # what was measured is merged even when a later case fails
        merge_reports(options.reports_dir)
    print(f"merged {table}; report at {options.reports_dir / f'{table}.md'}")


def _report(args) -> None:
    if args.table is not None:
        record(args.table, args.options, args.reports_dir)
        return
    if not args.reports_dir.is_dir():
        raise UserError(f"--reports-dir {args.reports_dir} is not a directory: pass the reports directory a "
                        f"pytest run or `pynqrepro report TABLE` wrote (default: ./reports)")
    ensure_writable_dir(args.reports_dir, "--reports-dir")
    written = merge_reports(args.reports_dir, index=True)
    print(f"merged {', '.join(written) or 'no new rows'}; index at {args.reports_dir / 'index.md'}")
