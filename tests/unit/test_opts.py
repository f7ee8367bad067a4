"""The [oslo_reports] options: oslo.reports' own, gmr's, and the generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from oslo_config import cfg

from gmr import opts


def test_set_defaults_registers_the_group_with_oslo_defaults() -> None:
    conf = cfg.ConfigOpts()
    opts.set_defaults(conf)
    conf([], project="t")
    group = conf.oslo_reports
    assert group.log_dir is None
    assert group.file_event_handler is None
    assert group.file_event_handler_interval == 1
    assert group.format == "text" and group.group_stacks is False
    assert group.max_stack_depth == 0 and group.environment_allowlist == []


def test_set_defaults_overrides() -> None:
    conf = cfg.ConfigOpts()
    opts.set_defaults(conf, log_dir="/var/log/gmr", max_reports=5)
    conf([], project="t")
    assert conf.oslo_reports.log_dir == "/var/log/gmr"
    assert conf.oslo_reports.max_reports == 5


def test_list_opts_names() -> None:
    ((group, options),) = opts.list_opts()
    assert group == "oslo_reports"
    names = [opt.name for opt in options]
    assert names[:3] == ["log_dir", "file_event_handler", "file_event_handler_interval"]


def test_oslo_config_generator_lists_them(tmp_path: Path) -> None:
    generator = Path(sys.executable).parent / "oslo-config-generator"
    out = subprocess.run([str(generator), "--namespace", "gmr"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "[oslo_reports]" in out
    for name in ("log_dir", "file_event_handler_interval", "watchdog_timeout", "max_reports"):
        assert f"#{name} = " in out


def test_warm_up_reads_every_option_once_so_reports_find_them_parsed(tmp_path: Path) -> None:
    """oslo.config parses and converts a value the first time it is read,
    then keeps it: set-up does that once, not the first report."""
    from gmr import report

    conversions: list[str] = []

    def counted(value: str) -> str:
        conversions.append(value)
        return value

    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.Opt("plain", type=counted), cfg.Opt("other", type=counted)],
                       group="service")
    conf.register_opt(cfg.StrOpt("broken"))
    config_file = tmp_path / "service.conf"
    config_file.write_text("[DEFAULT]\nbroken = $nowhere\n[service]\nplain = one\nother = two\n")
    report.warm_up(conf)  # not parsed yet: no error
    conf(["--config-file", str(config_file)], project="t")
    conversions.clear()
    report.warm_up(conf)  # "broken" cannot be read: said in the report, not raised here
    assert sorted(conversions) == ["one", "two"]
    data = report.configuration_data(conf)
    assert data["service"] == {"other": "two", "plain": "one"}
    assert data["default"]["broken"].startswith("<") and "Error" in data["default"]["broken"]
    assert sorted(conversions) == ["one", "two"]  # the report converted nothing again
