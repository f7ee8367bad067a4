"""Nothing of a secret option's value appears in a report, not even when the
value is bad; credentials in every other string are masked (issue 13, item 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from conftest import next_report, section, validate_report
from gmr.report import configuration_data

pytestmark = pytest.mark.timeout(180)

#: Values of secret options: no part of any may appear.
SECRET_VALUES = ["port-secret-123", "choice-secret-456", "abc$SECRET17xyz", "good-secret-789",
                 "list-secret-246"]
SECRET_PARTS = ["port-secret", "choice-secret", "SECRET17", "good-secret", "list-secret"]

CONFIG = """\
[DEFAULT]
workers = notanumber
[db]
port_secret = port-secret-123
choice_secret = choice-secret-456
dollar_secret = abc$SECRET17xyz
good_secret = good-secret-789
list_secret = list-secret-246,other
uses_good = host=db user=nova secret-of-$good_secret
uses_bad = $port_secret
uses_dollar = x-$dollar_secret
dict_opt = password:dict-secret-555,user:nova
"""


def secret_conf(tmp_path: Path) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.IntOpt("workers")])
    conf.register_opts([
        cfg.IntOpt("port_secret", secret=True),
        cfg.StrOpt("choice_secret", secret=True, choices=["a", "b"]),
        cfg.StrOpt("dollar_secret", secret=True),
        cfg.StrOpt("good_secret", secret=True),
        cfg.ListOpt("list_secret", secret=True),
        cfg.StrOpt("uses_good"),
        cfg.StrOpt("uses_bad"),
        cfg.StrOpt("uses_dollar"),
        cfg.DictOpt("dict_opt"),
    ], group="db")
    path = tmp_path / "secret.conf"
    path.write_text(CONFIG)
    conf([], project="secret-test", default_config_files=[str(path)])
    return conf


def everything(data: Any) -> str:
    return json.dumps(data) + repr(data)


def test_secret_options_with_bad_values_show_nothing_of_their_value(tmp_path: Path) -> None:
    data = configuration_data(secret_conf(tmp_path))
    shown = everything(data)
    for part in [*SECRET_VALUES, *SECRET_PARTS, "dict-secret-555"]:
        assert part not in shown
    db = data["db"]
    for name in ("port_secret", "choice_secret", "dollar_secret"):
        assert db[name].startswith("*** <")
        assert name in db[name]
    assert db["good_secret"] == db["list_secret"] == "***"
    # A secret interpolated into another option is masked there too.
    assert db["uses_good"] == "host=db user=nova secret-of-***"
    # An option that quotes a bad secret says only that it could not be read.
    assert db["uses_bad"].startswith("<") and "uses_bad" in db["uses_bad"]
    assert db["uses_dollar"].startswith("<") and "uses_dollar" in db["uses_dollar"]
    assert db["dict_opt"] == {"password": "***", "user": "nova"}
    # A bad value of an ordinary option keeps its helpful error text.
    assert "notanumber" in data["default"]["workers"]


def test_a_report_of_a_service_shows_nothing_of_its_bad_secrets(report_service,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    # The service's one secret option, app.api_token, gets a value that oslo.config
    # cannot interpolate; dsn quotes it; connection holds a password with an @.
    conf = ("[app]\napi_token = tok$SECRET17tail\n"
            "dsn = host=db password=$api_token\n"
            "connection = mysql://user:p@ss-word@db.example/nova\n")
    for form in ("text", "json"):
        logs = tmp_path / f"logs-{form}"
        logs.mkdir()
        svc = report_service(
            "--upstream", "https://svc:up@stream-pw@upstream.example/api",
            conf=f"[oslo_reports]\nlog_dir = {logs}\nformat = {form}\n{conf}")
        rendered = next_report(svc, logs).read_text()
        for part in ("SECRET17", "tok$", "tail", "p@ss-word", "ss-word", "up@stream-pw",
                     "stream-pw"):
            assert part not in rendered, (form, part)
        if form == "json":
            app = section(validate_report(rendered), "configuration")["app"]
            assert app["api_token"].startswith("*** <") and "api_token" in app["api_token"]
            assert app["connection"] == "mysql://user:***@db.example/nova"
            assert "dsn" in app["dsn"]
        else:
            assert "mysql://user:***@db.example/nova" in rendered
            assert "https://svc:***@upstream.example/api" in rendered


def test_allowed_environment_section_errors_and_section_data_are_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the application hands over (an allow-listed variable, a section's
    error text and data) is masked as configuration values are."""
    from gmr import report

    monkeypatch.setenv("PGPASSWORD", "hunter2-env")
    monkeypatch.setenv("GMR_TEST_DSN", "postgresql://nova:hunter2-dsn@db/nova")
    options = report.Options(environment_allowlist=("PGPASSWORD", "GMR_TEST_DSN"))
    environment = str(report.processes_data(options))
    assert "hunter2" not in environment and "postgresql://nova:***@db/nova" in environment

    def fails() -> None:
        raise RuntimeError("cannot connect: password=hunter2-error")

    failed = report._guard("custom", "DB password=hunter2-title", fails)
    assert "hunter2" not in f"{failed.title} {failed.error}"
    assert failed.error is not None and "RuntimeError" in failed.error

    section = report._guard("custom", "DB", lambda: {"dsn": "mysql://u:hunter2-data@h/db",
                                                       "password": "hunter2-key"})
    assert "hunter2" not in str(section.data)
