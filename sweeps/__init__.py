"""Sweeps: grids of training runs through the shared harness, with scaling fits (``vtlm sweep``)."""
