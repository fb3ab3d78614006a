"""Benchmarks behind BENCHMARKS.md, one module each, run as `etok-tools bench NAME`."""
