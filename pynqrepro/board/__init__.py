"""Board stage: FINN's deployment package on a PYNQ board over SSH, FINN's driver run there.

``stage_package`` (package.py) adds the test set and the on-board runner (on_board.py) to a
build's ``deploy/`` folder; ``BoardLogin`` and the ssh/scp argv (remote.py); ``run_on_board``
copies, runs and fetches FINN's driver reports, parsed by measurements.py into ``BoardResult``;
``hw_graph_accuracy`` and ``accuracy_flag`` (compare.py) set the board beside the HW graph in Python.
"""
