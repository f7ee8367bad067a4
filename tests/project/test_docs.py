"""The documentation's excerpts of real reports against the code as it is
now. The Sphinx build (scripts/test's docs job) checks the pages, their
references, the options and the CLI usage, which it makes from the code;
what it cannot see is a committed excerpt that no longer matches what gmr
writes: a JSON excerpt the schema no longer accepts, a header the renderer
no longer writes, an option missing from a report's Configuration."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import GOLDEN, ROOT
from gmr import opts
from gmr.render import json_schema

pytestmark = pytest.mark.compiled_only

DOCS = ROOT / "docs"


def literal_blocks(page: Path, language: str) -> list[tuple[str, str]]:
    """Each ``.. code-block:: language`` of page: the line before it (a
    comment such as ``.. checked against $defs/header``, or ""), and its
    text, dedented."""
    pattern = re.compile(r"(?:^(\.\. [^\n]*)\n\n)?^\.\. code-block:: " + re.escape(language)
                         + r"\n\n((?:(?:[ \t]+[^\n]*)?\n)+)", re.MULTILINE)
    return [(before or "", textwrap.dedent(body).strip("\n") + "\n")
            for before, body in pattern.findall(page.read_text())]


def header_keys(report: str) -> list[str]:
    """The keys of a text report's header, in order."""
    header = report.split("|" * 72 + "\n\n", 1)[1].split("\n\n", 1)[0]
    return [line.split(" = ", 1)[0] for line in header.splitlines()]


def test_the_json_excerpts_follow_the_schema() -> None:
    import jsonschema

    schema = json_schema()
    checked = []
    for page in sorted(DOCS.glob("*.rst")):
        for before, text in literal_blocks(page, "json"):
            found = re.fullmatch(r"\.\. checked against \$defs/(\w+)", before)
            if found is None:
                continue
            part: dict[str, Any] = {"$schema": schema["$schema"], "$defs": schema["$defs"],
                                    "$ref": f"#/$defs/{found[1]}"}
            validator = jsonschema.Draft202012Validator(
                part, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            errors = [error.message[:200] for error in validator.iter_errors(json.loads(text))]
            assert not errors, f"{page.name}, $defs/{found[1]}: {errors}"
            checked.append(found[1])
    assert {"header", "threadGroup", "pool"} <= set(checked), checked


def test_the_text_header_excerpt_has_the_renderer_s_keys() -> None:
    """The header of the report read in docs/reading.rst (compiled core,
    one hold, nothing displaced) has the keys of the golden minimal report,
    which tests/unit/test_report.py keeps the renderer's."""
    blocks = [text for _, text in literal_blocks(DOCS / "reading.rst", "none")
              if text.startswith("=" * 72 + "\n====" + " " * 24 + "Guru Meditation ")]
    assert len(blocks) == 1
    assert header_keys(blocks[0]) == header_keys((GOLDEN / "report_minimal.txt").read_text())


def test_the_configuration_excerpt_lists_every_option() -> None:
    blocks = [text for _, text in literal_blocks(DOCS / "reading.rst", "none")
              if "\noslo_reports: \n" in text]
    assert len(blocks) == 1
    group = blocks[0].split("\noslo_reports: \n", 1)[1].split("\n\n", 1)[0]
    shown = [line.split(" = ", 1)[0].strip() for line in group.splitlines()]
    assert shown == sorted(option.name for option in opts.list_opts()[0][1])
