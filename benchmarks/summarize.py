"""Markdown tables of the capture pauses in one or more ``--benchmark-json`` files.

    python benchmarks/summarize.py results-3.11.json results-3.12.json

One column per (Python, twin): the median pause the capture stated
(RawCapture.pause_ns), in ms, and for greenlet discovery the same median
divided by the number of GC-tracked objects it visited (ns/object).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any


def _load(path: str) -> tuple[str, list[dict[str, Any]]]:
    with open(path) as f:
        data = json.load(f)
    version = data["machine_info"]["python_version"]
    return version, data["benchmarks"]


def main(paths: list[str]) -> None:
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    columns: list[str] = []
    for path in paths:
        version, benchmarks = _load(path)
        for bench in benchmarks:
            info = bench["extra_info"]
            twin = "c" if info["implementation"] == "compiled" else "py"
            column = f"{version} {twin}"
            if column not in columns:
                columns.append(column)
            name = re.sub(r"-(c|py)(?=[-\]])", "", bench["name"])
            name = name.replace("[c-", "[").replace("[py-", "[")
            cells.setdefault(name, {})[column] = info

    def table(prefix: str, title: str, per_object: bool) -> None:
        rows = [name for name in cells if name.startswith(prefix)]
        if not rows:
            return
        print(f"### {title}\n")
        print("| workload | " + " | ".join(columns) + " |")
        print("| --- | " + " | ".join("---:" for _ in columns) + " |")
        for name in rows:
            out = []
            for column in columns:
                info = cells[name].get(column)
                if info is None:
                    out.append("")
                elif per_object and "ns_per_object" in info:
                    out.append(f"{info['pause_ms_median']:.3f} ms / {info['ns_per_object']:.2f} ns")
                else:
                    out.append(f"{info['pause_ms_median']:.4f} ms")
            label = name[name.index("[") + 1 : -1]
            print(f"| {label} | " + " | ".join(out) + " |")
        print()

    table("test_threads", "Thread walk: median pause (ms)", per_object=False)
    table("test_greenlets", "Greenlet discovery + walks: median pause (ms) / ns per heap object",
          per_object=True)
    table("test_base_workload", "Base workload T10 D30 G1000: median pause (ms) / ns per object",
          per_object=True)
    table("test_greenlet_depth", "10,000 greenlets by depth, heap 1e5: median pause (ms)",
          per_object=False)


if __name__ == "__main__":
    main(sys.argv[1:])
