"""Benchmarks behind ``bench perf NAME``: name → ``"module:main"``, where ``main(argv) -> exit status``."""

BENCHMARKS = {
    "executor": "bench.perf.executor:main",
    "purify": "defenses.defensegan.perf:main",
}
