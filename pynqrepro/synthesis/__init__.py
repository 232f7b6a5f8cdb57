"""Vivado stage: FINN's full build as a store artifact, post-synthesis utilisation and timing as data.

``synthesis_artifact(store, hw_artifact, board, folding)`` runs FINN's builder from the cached HW
model (bitfile, driver settings, deployment package); ``read_build(build_dir, clock_ns)`` parses
what it wrote (vivado_build.py) with the parsers in vivado_reports.py; ``check_package``
(deployment.py) checks a deployment package.
"""
