"""The root conftest: pynqrepro's pytest plugin gives markers, options and fixtures to
experiments/ and tests/ alike."""

pytest_plugins = ["pynqrepro.pytest_plugin"]
