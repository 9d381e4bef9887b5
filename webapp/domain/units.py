"""Sizes as people read them: the one helper for every message that names a byte limit."""
from __future__ import annotations

IEC = ("MiB", "KiB")  # 1024-based, as every limit here is


def size_text(limit: int) -> str:
    """``1 MiB`` for 1024 * 1024 bytes, ``1.5 KiB`` for 1536; under 1 KiB in bytes."""
    for unit, scale in zip(IEC, (1024 * 1024, 1024)):
        if limit >= scale:
            return f"{limit / scale:g} {unit}"
    return f"{limit} bytes"
