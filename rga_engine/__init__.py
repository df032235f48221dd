"""rga_engine: backdoor unlearning for text classifiers (the science; no UI imports)."""

__version__ = "0.1.0"
