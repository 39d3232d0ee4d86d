"""The index's exception, in a module that imports nothing heavy (see wwhd/lazy.py)."""


class IndexUnavailable(RuntimeError):
    """Qdrant could not be reached or refused the operation."""
