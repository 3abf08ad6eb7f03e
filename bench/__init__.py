"""Benchmarks: vtlm beside its peers on the same workloads, in one run."""
