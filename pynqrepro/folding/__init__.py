"""Folding (PE/SIMD) search for FINN HW models: a vectorised copy of FINN's cost model, an exact
resource-budgeted optimiser and the baselines it is compared with (FINN SetFolding, the study's
greedy search, all-1, FINN's published foldings)."""
