"""Check functions for the notebooks' exercises, one module per notebook, and the notebooks'
printing asserts :func:`claim` and :func:`check_close` (:mod:`camlib.exercises.claims`)."""

from .claims import check_close, claim

__all__ = ["claim", "check_close"]
