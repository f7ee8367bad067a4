"""Secret hygiene: credentials that hide inside ordinary values.

``secret=True`` options are masked by the Configuration section already; this
masks what leaks through values that are not declared secret: the password of
``scheme://user:password@host`` URLs and ``password=...``-style pairs in
connection strings and command lines.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)")
# ...,user:password@host: the further hosts of a multi-host URL (oslo.messaging)
_MORE_HOSTS = re.compile(r"(?P<head>,[^:/@\s,]*:)(?P<secret>[^@\s,]+)(?=@)")
# password=..., passwd: ..., token=..., secret=..., api_key=... (until ; & , space or quote)
_PAIR = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)"
    r"\s*[=:]\s*)(?P<secret>[^\s;&,'\"]+)",
    re.IGNORECASE,
)
# --password value / --token=value on command lines
_FLAG = re.compile(
    r"(?P<head>--?(?:password|passwd|secret|token|api[_-]?key)(?:=|\s+))(?P<secret>\S+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """text with every credential it carries replaced by ***."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    if "://" in text:
        text = _MORE_HOSTS.sub(lambda m: m["head"] + MASK, text)
    text = _FLAG.sub(lambda m: m["head"] + MASK, text)
    return _PAIR.sub(lambda m: m["head"] + MASK, text)


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with credentials masked, including `--password VALUE`
    split over two arguments."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if _FLAG.fullmatch(arg + " x") and "=" not in arg:
            hide_next = True
            out.append(arg)
            continue
        out.append(redact(arg))
    return out
