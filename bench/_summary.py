"""The table ``make bench`` ends with: every figure the scripts recorded (``bench._common.record``), its target
and whether it was met. Usage: ``python bench/_summary.py RESULTS_FILE [SCRIPT_STATUS_FILE]``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import print_table  # noqa: E402


def main(argv: list[str]) -> int:
    results = Path(argv[1])
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if results.exists() else []
    failed = []
    if len(argv) > 2 and Path(argv[2]).exists():
        failed = [line.split() for line in Path(argv[2]).read_text().splitlines() if line.strip()]
    table = [[f"{r['figure']} ({r['script']})", r["value"], r["target"],
              "-" if r["met"] is None else "met" if r["met"] else "MISSED"] for r in rows]
    table += [[f"{name}: ended with code {code}, no figure", "-", "-", "MISSED"] for name, code in failed]
    print_table(["figure", "value", "target", "met/missed"], table, title="make bench: every figure")
    missed = sum(1 for r in table if r[3] == "MISSED")
    print(f"\n{len(table) - missed} of {len(table)} rows met or reference only; {missed} missed.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
