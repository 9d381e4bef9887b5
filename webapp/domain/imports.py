"""Bulk import of workloads: the file's shape and the rules across its rows (plain Python, no Flask, no SQL).

Each row is one workload, checked by the same ``Workload`` rules as a single create; what only a batch has is
here: the CSV columns, the limits of a file, and that two rows may not name the same IP address.
"""
from __future__ import annotations

from typing import Iterable, Mapping

CSV_COLUMNS = ("ip", "username", "password", "domain", "volumes")  # the header, in this order (any order is read)
MAX_IMPORT_ROWS = 10_000  # rows of one import (more: split the file)
MAX_CELL_CHARS = 1_000  # one CSV cell; a username, password or domain is at most 255 anyway
MAX_VOLUMES = 64  # volumes of one row
PREVIEW_ROWS = 20  # rows the import page shows before confirming


def duplicate_rows(ips: Iterable[tuple[int, str]]) -> dict[int, int]:
    """``{row: first row}`` for every row whose (normalised) IP an earlier row of the batch already has."""
    first: dict[str, int] = {}
    duplicates: dict[int, int] = {}
    for row, ip in ips:
        if ip in first:
            duplicates[row] = first[ip]
        else:
            first[ip] = row
    return duplicates


def duplicate_messages(ips: Iterable[tuple[int, str]], stored: Mapping[str, int]) -> dict[int, str]:
    """``{row: message}`` for rows whose IP is an earlier row's or a stored workload's (``stored``: ip → id)."""
    ips = list(ips)
    messages = {row: f"Same IP address as row {first}: each IP may appear once."
                for row, first in duplicate_rows(ips).items()}
    for row, ip in ips:
        if ip in stored and row not in messages:
            messages[row] = f"{ip} is already a workload (id {stored[ip]})."
    return messages
