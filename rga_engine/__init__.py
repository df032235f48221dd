"""rga_engine: backdoor unlearning for text classifiers (the science; no UI imports)."""

from rga_engine import host_memory as _host_memory

# before PyTorch's first CPU tensor, which fixes its allocation for the process (host_memory.py)
_host_memory.request_huge_pages()

__version__ = "0.1.0"
