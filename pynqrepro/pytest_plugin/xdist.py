"""pytest-xdist wiring: one session id and --fresh cut-off for the controller and every worker (each
worker's share of the cores: options.share_cores), the controller's merge of rows its workers recorded, and under
``--executor slurm`` the controller's line of job counts."""

import threading

import pytest

from pynqrepro.core.progress import ProgressLine
from pynqrepro.pytest_plugin.options import activate


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller -> worker: one session id and --fresh cut-off for all workers."""
    config = node.config
    node.workerinput["pynqrepro_session_id"] = config.pynqrepro_session_id
    node.workerinput["pynqrepro_fresh_since"] = getattr(config, "pynqrepro", {}).get("fresh_since")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """A worker that used pynqrepro recorded rows: the controller merges them at the session's end."""
    if getattr(node, "workeroutput", {}).get("pynqrepro_active"):
        activate(node.config)


def pytest_sessionstart(session):
    """Under xdist with --executor slurm the controller, which waits for no job itself, prints one
    line whenever the store's queued/running/finished job counts change."""
    config = session.config
    executor = getattr(config, "pynqrepro", {}).get("executor")
    if getattr(executor, "name", "local") != "slurm" or hasattr(config, "workerinput"):
        return
    if not config.getoption("numprocesses", None):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stop, show = threading.Event(), ProgressLine(reporter.write_line)
    monitor = executor.monitor(config.pynqrepro["paths"]["store"])

    def watch() -> None:
        while True:
            final = stop.is_set()
            if final or show.due():  # SLURM is asked per job: only for a line shown
                line = monitor.line()
                if line:
                    show(line)
            if final:
                show.flush()  # the final counts
                return
            stop.wait(executor.config.poll_s)

    thread = threading.Thread(target=watch, daemon=True, name="pynqrepro-jobs")
    thread.start()
    config.pynqrepro["monitor"] = (stop, thread)
