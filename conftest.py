"""Root conftest of the reproduction. Markers, options and fixtures come from pynqrepro's pytest
plugin (``pynqrepro/pytest_plugin/``), registered as a ``pytest11`` entry point of the installed
package so that its options are known before pytest collects (see pyproject.toml)."""
