"""Keeping Python's garbage collector off what a process loaded once.

A warm process holds a few hundred thousand long-lived objects (modules, the app, SQLAlchemy's mappers and
compiled statements, Jinja's templates). Every full collection walks them all, tens of milliseconds of CPU
at a moment no request or job chose: that was the slow tail of recording a run's results (``bench/testhistory.py``:
``stats.update`` of 500 results, p95 52.9 ms with them walked, 29.2 ms frozen). ``freeze`` moves them out of
the collector's reach once the process is warm; what it allocates afterwards is collected as usual.
"""
from __future__ import annotations

import gc


def freeze() -> int:
    """Collect once, then move every object alive now into the permanent generation, which collections skip.
    Called by an RQ worker after its warm-up, before its first job (a work horse inherits it). Not by the web
    server: ``bench/polling.py`` measured no difference there (two runs each way, within the noise).
    Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
