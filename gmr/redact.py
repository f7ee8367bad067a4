"""Secret hygiene: credentials that hide inside ordinary values.

``secret=True`` options are masked by the Configuration section; this masks
what leaks through everything else, one entry point per kind of input:

- :func:`redact_text` (also :func:`redact`): a string — the password of
  ``scheme://user:password@host`` URLs (an ``@`` in the password included),
  ``key=value`` / ``key: value`` pairs whose key names a credential
  (``password``, ``DB_PASSWORD``, ``PGPASSWORD``, ``MYSQL_PWD``, ``pass``,
  ``client_secret``, ``aws_secret_access_key``, ``X-Auth-Token``, ...), with
  the value bare or quoted, JSON and Python-repr pairs (``"password": "x"``),
  command-line flags (``--os-password X``, ``--db-password=X``), and
  ``Authorization: Bearer|Basic ...`` headers;
- :func:`redact_argv`: a command line, where the item after a credential flag
  (``--auth-token``, ``--os-password``) is the secret;
- :func:`redact_environment`: environment variables, a credential's name
  (``PGPASSWORD``) hiding its whole value;
- :func:`redact_value`: nested data (strings, lists, mappings), a mapping's
  credential key hiding its whole value.

The patterns follow what OpenStack expects from oslo.utils'
``strutils.mask_password`` (credential names inside longer keys, quoted
values, JSON and XML-free text), written here so that gmr needs no more
dependencies. A false mask is cheap; a leak is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# A credential's name: one that contains one of these words...
_CONTAINS = (r"password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key"
             r"|private[_-]?key|credential|auth[_-]?key|ssl[_-]?key|fernet[_-]?key")
# ...or has one of these as a whole part (MYSQL_PWD, pass, os-auth); "bypass" has not.
_PART = r"pwd|pass|pw|auth"
# Names that point at a credential or say how to get one (password_file, auth_url,
# auth_type) are not one.
_POINTER = re.compile(r"[_.\-](?:file|filename|path|dir|prompt|url|uri|type|strategy|method"
                      r"|plugin|section|version)$", re.IGNORECASE)
_ID = r"[A-Za-z0-9_.\-]{0,64}"  # bounded: no slow matching on a long word
_KEY = (rf"{_ID}?(?:{_CONTAINS}){_ID}"
        rf"|(?:{_ID}[_.\-])?(?:{_PART})(?:[_.\-]{_ID})?(?![A-Za-z0-9])")
_NAME = re.compile(rf"(?:{_KEY})", re.IGNORECASE)

# scheme://user:password@host -> scheme://user:***@host. The password runs to the
# last @ of the host part, so that "p@ss" is masked whole; a comma ends a host
# (rabbit://u:p@h1,u:p@h2/ lists several).
_HOST_END = r"(?=@[^@/\s,?#]*(?:[,/?#\s]|$))"
_URL_PASSWORD = re.compile(
    rf"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^/\s]*?){_HOST_END}")
# ...,user:password@host: the further hosts of a multi-host URL (oslo.messaging)
_MORE_HOSTS = re.compile(rf"(?P<head>,[^:/@\s,]*:)(?P<secret>[^/\s,]*?){_HOST_END}")
# password=x, "password": "x", PGPASSWORD='x', --db-password=x, token: x
_PAIR = re.compile(
    rf"(?<![A-Za-z0-9_.\-])(?P<q>[\"']?)(?P<key>{_KEY})(?P=q)(?P<sep>\s*[=:]\s*)"
    r"(?P<secret>\"(?:[^\"\\]|\\.)*\"?|'[^']*'?|[^\s;&,'\"]+)",
    re.IGNORECASE,
)
# --os-password x, -password x (value not itself a flag)
_FLAG = re.compile(rf"(?<!\S)(?P<key>--?(?:{_KEY}))(?P<sep>\s+)(?P<secret>(?!--)[^\s'\"]+)",
                   re.IGNORECASE)
# Authorization: Bearer x / Basic x / x; a bare "Bearer x" token anywhere
_AUTHORIZATION = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization[\"']?\s*[=:]\s*[\"']?"
    r"(?:(?:bearer|basic|digest|token|negotiate|ntlm|aws4-hmac-sha256)\s+)?)"
    r"(?P<secret>[^\s\"',;]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)(?P<secret>(?!\*\*\*)[A-Za-z0-9\-._~+/]+=*)",
                     re.IGNORECASE)


def is_credential_name(name: str) -> bool:
    """Whether a key, flag or variable name names a credential (DB_PASSWORD,
    --os-password, client_secret), not a pointer to one (password_file)."""
    name = name.strip()
    return bool(_NAME.fullmatch(name.lstrip("-"))) and not _POINTER.search(name)


def _pair(match: re.Match[str]) -> str:
    if _POINTER.search(match["key"]):
        return match[0]
    secret = match["secret"]
    quote = secret[0] if secret[:1] in ("'", '"') else ""
    closing = quote if len(secret) > 1 and secret.endswith(quote) else ""
    return f"{match['q']}{match['key']}{match['q']}{match['sep']}{quote}{MASK}{closing}"


def _flag(match: re.Match[str]) -> str:
    if _POINTER.search(match["key"]):
        return match[0]
    return f"{match['key']}{match['sep']}{MASK}"


#: The texts masked so far and what they became: a report masks every
#: option value, and the same values come back at every report (five regular
#: expressions each, a third of a small report's time). The keys are the
#: very strings the configuration, the environment or argv hold.
_masked: dict[str, str] = {}
_MASKED_KEPT = 4096


def redact_text(text: str) -> str:
    """text with every credential it carries replaced by ***."""
    if not text:
        return text
    if type(text) is str:
        known = _masked.get(text)
        if known is None:
            if len(_masked) >= _MASKED_KEPT:
                _masked.clear()
            known = _masked[text] = _masks(text)
        return known
    return _masks(text)


def _masks(text: str) -> str:
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
        text = _MORE_HOSTS.sub(lambda m: m["head"] + MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m["head"] + MASK, text)
    text = _BEARER.sub(lambda m: m["head"] + MASK, text)
    text = _FLAG.sub(_flag, text)
    return _PAIR.sub(_pair, text)


#: The first name gmr gave redact_text; kept for its callers.
redact = redact_text


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with credentials masked: in each item, and the item
    that follows a credential flag (`--os-password VALUE`, `--auth-token VALUE`)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if arg.startswith("-") and "=" not in arg and is_credential_name(arg):
            hide_next = True
            out.append(arg)
            continue
        out.append(redact_text(arg))
    return out


def redact_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """Environment variables with credentials masked: a variable whose name
    names one (PGPASSWORD, MYSQL_PWD, OS_TOKEN) is *** whole."""
    return {name: MASK if is_credential_name(name) else redact_text(value)
            for name, value in environment.items()}


_SCALARS = frozenset({int, float, bool, type(None), bytes})


def redact_value(value: Any) -> Any:
    """Nested data (a configuration value, a JSON-like structure) with
    credentials masked: strings as by redact_text, and under a mapping key that
    names a credential the whole value."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if type(value) in _SCALARS:  # not asked of collections.abc: it keeps each answer
        return value
    if isinstance(value, Mapping):
        return {key: MASK if isinstance(key, str) and is_credential_name(key) and item is not None
                else redact_value(item)
                for key, item in value.items()}
    return value
