"""defense-bench: reproducible robustness evaluation of defenses for image classifiers and face recognizers."""
__version__ = "0.1.0"

# Bump when the meaning of a stored cell changes (evaluation semantics, record schema). It is part of every
# cell's key, so records computed under other semantics are never silently reused.
EVAL_VERSION = 1
