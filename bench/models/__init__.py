"""Classifier architectures and their (cached) training. Import-light: no torch at module level."""

BUILTIN = {arch: f"bench.models.classifiers:{arch}" for arch in ("A", "B", "C", "D", "E", "F")}
