"""A slow data import that reports its progress every 0.5 s for about 6 s.

pytest captures output while a test runs (and the console runs it without ``-s``), so the progress
lines are printed inside ``capsys.disabled()``: they reach the live log as they happen.
"""
import time

BATCHES = 12
BATCH_SECONDS = 0.5


def import_batch(number: int) -> int:
    """Pretend to import one batch of 250 customer records."""
    time.sleep(BATCH_SECONDS)
    return 250


def test_customer_import_reports_progress(capsys):
    imported = 0
    started = time.monotonic()
    with capsys.disabled():
        print(flush=True)
    for batch in range(1, BATCHES + 1):
        imported += import_batch(batch)
        with capsys.disabled():
            print(f"  progress: batch {batch}/{BATCHES}, {imported} records imported "
                  f"({time.monotonic() - started:.1f} s)", flush=True)
    assert imported == BATCHES * 250
