"""Masking secrets in a run's output (issue 14), in plain Python.

Every occurrence of a secret's value (6 characters or more) and of its common encodings (URL-encoded,
base64 of the value alone, XML/HTML-escaped) becomes ``[masked]``. ``Masker.feed`` takes output as it comes
and holds back only a tail that could still be the start of a secret, so a value split across two chunks is
masked too; ``Masker.flush`` gives the rest at the end. ``Masker.mask`` masks a whole text at once.
"""
from __future__ import annotations

import base64
import html
import re
from typing import Iterable
from urllib.parse import quote, quote_plus

MASK = "[masked]"
MIN_LENGTH = 6


def variants(value: str) -> set[str]:
    """The value and the encodings under which it is masked too."""
    raw = value.encode("utf-8")
    found = {value, quote(value, safe=""), quote_plus(value), html.escape(value, quote=True),
             html.escape(value, quote=False), html.escape(value, quote=False).replace('"', "&quot;")}  # XML attribute
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(raw).decode("ascii")
        found |= {text, text.rstrip("=")}
    return {v for v in found if len(v) >= MIN_LENGTH}


class Masker:
    def __init__(self, secrets: Iterable[str]):
        patterns = set()
        for value in secrets:
            if isinstance(value, str) and len(value) >= MIN_LENGTH:
                patterns |= variants(value)
        self.patterns = sorted(patterns, key=len, reverse=True)  # the longest first: no half-masked value
        self.regex = re.compile("|".join(map(re.escape, self.patterns))) if self.patterns else None
        self.longest = len(self.patterns[0]) if self.patterns else 0
        self.starts = {p[0] for p in self.patterns}
        self.pending = ""

    def mask(self, text: str | None) -> str | None:
        if not text or self.regex is None:
            return text
        return self.regex.sub(MASK, text)

    def feed(self, text: str) -> str:
        """What of ``pending + text`` can be shown now, masked; the rest waits for the next piece."""
        if self.regex is None:
            return text
        buffer, out, position = self.pending + text, [], 0
        limit = max(0, len(buffer) - self.longest + 1)  # a match starting before this is complete
        for match in self.regex.finditer(buffer):
            if match.start() >= limit:
                break
            out.append(buffer[position:match.start()])
            out.append(MASK)
            position = match.end()
        keep_from = max(position, self._unsure_from(buffer, max(position, limit)))
        out.append(buffer[position:keep_from])
        self.pending = buffer[keep_from:]
        return "".join(out)

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return self.mask(rest) or ""

    def _unsure_from(self, buffer: str, start: int) -> int:
        """The first index from ``start`` whose tail of ``buffer`` could still grow into a secret (a match
        there, or the start of one); ``len(buffer)`` when none could."""
        for index in range(start, len(buffer)):
            if buffer[index] in self.starts:
                tail = buffer[index:]
                if any(p.startswith(tail) or tail.startswith(p) for p in self.patterns):
                    return index
        return len(buffer)
