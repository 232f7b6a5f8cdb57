"""pynqrepro's pytest plugin, a ``pytest11`` entry point of the installed package (so its options
are known before pytest collects): ``options`` (options, markers, the session's state and report
merging), ``xdist`` (controller-worker wiring), ``fixtures`` (the fixtures and the ``study``
parametrization). pytest reads the hooks and fixtures from this module, so they are imported here.

Inert outside a pynqrepro project: a session creates no directory, checks no login and merges no
report unless it passes a pynqrepro option, its ini sets ``pynqrepro = true`` (this repository's
pyproject.toml does), or one of its tests uses a pynqrepro fixture or the ``study`` marker. Stage
markers skip a test whose resource is absent in any session (that check writes nothing).
"""

from pynqrepro.pytest_plugin.fixtures import (board, board_host, data_dir, pytest_generate_tests, results, scale, setup,
                                              store)
from pynqrepro.pytest_plugin.options import (pytest_addoption, pytest_configure, pytest_runtest_logreport,
                                             pytest_runtest_setup, pytest_sessionfinish)
from pynqrepro.pytest_plugin.xdist import pytest_configure_node, pytest_sessionstart, pytest_testnodedown

__all__ = ["board", "board_host", "data_dir", "pytest_addoption", "pytest_configure", "pytest_configure_node",
           "pytest_generate_tests", "pytest_runtest_logreport", "pytest_runtest_setup", "pytest_sessionfinish", "pytest_sessionstart",
           "pytest_testnodedown", "results", "scale", "setup", "store"]
