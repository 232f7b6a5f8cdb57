"""Folding (PE/SIMD) search for FINN HW models: a vectorised copy of FINN's cost model, of what
FINN's build inserts around it (width converters, FIFOs and the board's shell: ``wholedesign``),
an exact resource-budgeted optimiser of the compute nodes or of the whole design (``optimise``,
with the exact forest DP and Lagrangian certificates of ``lagrangian_bounds``) and the baselines it is
compared with (FINN SetFolding, the study's greedy search, all-1, FINN's published foldings)."""
