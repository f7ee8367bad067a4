"""Read a valgrind memcheck log (--leak-check=full, --num-callers=40) and
print what was definitely lost, in all and from a stack with a gmr frame
(gmr/_walker*.so, gmr/_trigger*.so, gmr/_files*.so, or a gmr_ C function);
exit 1 when gmr lost anything.

    python scripts/valgrind_gmr_leaks.py valgrind.log
"""

from __future__ import annotations

import re
import sys


def main(path: str) -> int:
    text = open(path).read()
    records = [record for record in re.split(r"\n==\d+== \n", text)
               if "definitely lost in loss record" in record]
    units = ("_walker", "_trigger", "_files")
    ours = [record for record in records
            if any(unit in record for unit in units) or " gmr_" in record]
    summary = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) blocks", text)
    suppressed = re.search(r"suppressed: ([\d,]+) bytes in ([\d,]+) blocks", text)
    print(f"definitely lost, not suppressed: {summary.group(1) if summary else '0'} bytes "
          f"in {summary.group(2) if summary else '0'} blocks ({len(records)} records)")
    if suppressed:
        print(f"suppressed (CPython noise): {suppressed.group(1)} bytes in "
              f"{suppressed.group(2)} blocks")
    print(f"definitely lost records with a gmr frame: {len(ours)}")
    for record in ours:
        print(record)
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
