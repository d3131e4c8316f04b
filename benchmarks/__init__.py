"""Benchmarks for jaxgd: one harness (:mod:`benchmarks.harness`) and its suites, each
runnable as ``python -m benchmarks.<suite>``; ``python -m benchmarks`` runs them all."""
