"""Picks the capture core: the compiled gmr._capture, or its pure-Python twin
where the extension is not built or GMR_NO_EXTENSIONS=1 asks for it. Nothing
else in gmr imports either one directly."""

from __future__ import annotations

import os

if os.environ.get("GMR_NO_EXTENSIONS", "") not in ("", "0"):
    from gmr import _capture_py as core
else:
    try:
        from gmr import _capture as core  # type: ignore[no-redef]
    except ImportError:
        from gmr import _capture_py as core

#: "compiled" or "pure": which core captures in this process.
IMPLEMENTATION: str = core.IMPLEMENTATION

__all__ = ["IMPLEMENTATION", "core"]
