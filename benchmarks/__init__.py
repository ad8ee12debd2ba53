"""Side-by-side benchmarks: ``python -m benchmarks <area>``.

Each area module defines ``run(args) -> list[Row]`` comparing skysense with its peer on the same
data in one run. The shared runner prints the table and writes JSON to ``benchmarks/results/``.
Benchmarks never run in the test suite.
"""
