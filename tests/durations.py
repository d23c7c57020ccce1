"""Refresh ``tests/durations.json`` (seconds per test file, fast tier, 2 cores) from the last run's records.

Every pytest run writes each worker's per-file seconds to ``.cache/test-durations/<worker>.json``
(tests/conftest.py). After a full ``./run test`` on a 2-core machine: ``python -m tests.durations``. The
conftest orders test files longest first by this table so the two xdist workers finish close together.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORD_DIR = HERE.parent / ".cache" / "test-durations"


def main() -> None:
    merged: dict[str, float] = {}
    paths = sorted(RECORD_DIR.glob("gw*.json")) or sorted(RECORD_DIR.glob("*.json"))  # xdist workers, else one process
    for path in paths:
        for name, seconds in json.loads(path.read_text()).items():
            merged[name] = merged.get(name, 0.0) + seconds
    if not merged:
        raise SystemExit(f"no records in {RECORD_DIR}: run ./run test first")
    table = {"_about": "seconds per test file, fast tier, 2 cores; python -m tests.durations refreshes it"}
    table.update({k: round(v, 1) for k, v in sorted(merged.items(), key=lambda kv: -kv[1])})
    (HERE / "durations.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"{len(merged)} files, {sum(merged.values()):.0f} s in all")


if __name__ == "__main__":
    main()
