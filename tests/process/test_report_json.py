"""The JSON report and its versioned schema (gmr/report.schema.json): real
reports of every section kind validate against it, the schema describes
every field and rejects what it does not know, and the format is chosen by
[oslo_reports] format or by run(format=...)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from conftest import next_report, section, validate_report
from gmr import TextGuruMeditation
from gmr.render import json_schema
from gmr.report import REPORT_VERSION

pytestmark = pytest.mark.timeout(180)

EVERY_SECTION = ("--sections", "--asyncio", "--thread-kinds", "--greenlets", "5")


@pytest.mark.parametrize(("form", "options"), [
    ("json", ""),
    ("json-compact", "group_stacks = true\nmax_stack_depth = 4\n"),
])
def test_real_reports_validate(report_service, tmp_path: Path, form: str, options: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(*EVERY_SECTION,
                         conf=f"[oslo_reports]\nlog_dir = {logs}\nformat = {form}\n{options}")
    text = next_report(svc, logs).read_text()
    if form == "json-compact":
        assert text.endswith("\n") and text.count("\n") == 1
    else:
        assert text.startswith("{\n  ")
    document = validate_report(text)
    assert document["header"]["reportVersion"] == REPORT_VERSION
    kinds = [entry["kind"] for entry in document["sections"]]
    assert kinds[:6] == ["package", "threads", "greenlets", "tasks", "processes",
                         "configuration"]
    assert kinds[6:] == ["custom"] * 6
    (broken,) = [entry for entry in document["sections"] if entry["error"]]
    assert broken["title"] == "A Broken One" and broken["data"] is None
    assert section(document, "tasks")
    if options:  # grouped, and deep stacks cut
        assert all("count" in item for item in section(document, "greenlets"))
        assert any(item["omitted"] for item in section(document, "threads"))


def test_schema_is_draft_2020_12_versioned_and_describes_every_field() -> None:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["header"]["properties"]["reportVersion"]["const"] == REPORT_VERSION

    def undescribed(node: Any, where: str) -> list[str]:
        missing = []
        if isinstance(node, dict):
            for name, field in node.get("properties", {}).items():
                if "description" not in field and "$ref" not in field:
                    missing.append(f"{where}.{name}")
            for key, child in node.items():
                if key not in ("if", "then"):  # conditions restate described fields
                    missing += undescribed(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                missing += undescribed(child, f"{where}[{index}]")
        return missing

    assert undescribed(schema, "") == []


DRIFTS = {
    "unknown header field": lambda doc: doc["header"].update(surprise=1),
    "unknown thread field": lambda doc: section(doc, "threads")[0].update(surprise=1),
    "frame line not a number": lambda doc: section(doc, "threads")[0].update(
        frames=[["file.py", "12", "f", ""]]),
    "another report version": lambda doc: doc["header"].update(reportVersion=REPORT_VERSION + 1),
    "unknown fact": lambda doc: section(doc, "processes")["facts"].update(surprise=1),
    "unknown section kind": lambda doc: doc["sections"][0].update(kind="surprise"),
}


@pytest.fixture(scope="module")
def api_report() -> dict[str, Any]:
    return validate_report(TextGuruMeditation("1").run(format="json"))


@pytest.mark.parametrize("drift", DRIFTS.values(), ids=list(DRIFTS))
def test_schema_catches_drift(api_report: dict[str, Any], drift: Any) -> None:
    document = copy.deepcopy(api_report)
    drift(document)
    with pytest.raises(ValidationError):
        Draft202012Validator(json_schema()).validate(document)


@pytest.mark.parametrize("form", ["text", "json", "json-compact"])
def test_run_takes_the_format(form: str) -> None:
    text = TextGuruMeditation("1").run(format=form)
    if form == "text":
        assert text.startswith("=" * 72 + "\n====")
    else:
        document = validate_report(text)
        assert document["header"]["trigger"] == "api"
        assert (text.count("\n") == 1) == (form == "json-compact")


def test_run_refuses_an_unknown_format_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^unknown report format 'xml': one of text, json, "
                                         r"json-compact$"):
        TextGuruMeditation("1").run(format="xml")


def test_a_bad_format_option_says_so_and_writes_text(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service(conf=f"[oslo_reports]\nlog_dir = {logs}\nformat = xml\n")
    text = next_report(svc, logs).read_text()
    assert text.startswith("=" * 72)
    # The pure twin's line from set-up (tests/test_fallback.py) is not an error.
    errors = [line for line in svc.stderr_lines if line.startswith("gmr:")
              and not line.startswith("gmr: pure-Python ")]
    assert len(errors) == 1 and "[oslo_reports] format:" in errors[0], errors
    assert "using 'text'" in errors[0]
    assert svc.alive()
