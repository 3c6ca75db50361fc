"""Experiments: evaluation harness, sweeps, a resumable results store, paper figures and tables.

Nothing here is imported by ``import fac_lens``; import the submodules you need.
"""
