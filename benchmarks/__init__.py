"""Benchmarks for jaxgd: timing helpers (:mod:`benchmarks.timing`) and suites such as
:mod:`benchmarks.update_step`, each runnable with ``python -m benchmarks.<suite>`` and each
writing its own section of ``benchmarks/RESULTS.md``.
"""
