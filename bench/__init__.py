"""Benchmarks of the analysis core: a scripted development set, a naive baseline, scoring.

Everything here scores callwatch through its public ``callwatch.analysis/1`` JSON contract,
never through pipeline internals, so a rewrite of the detectors is measured the same way.
"""
