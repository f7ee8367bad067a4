"""service_name names a file in log_dir and nothing else: a name that would
leave log_dir (or cannot name a file) is made safe, one line says so, and
the reports (full and degraded) are written in log_dir. A relative log_dir
is resolved once, at set-up."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from conftest import FUTEX, next_report, reports, wait_for, wait_in_futex
from gmr.sinks import MAX_NAME_BYTES, safe_name

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("given", "safe"), [
    ("nova-api", "nova-api"),
    ("service.py", "service.py"),
    ("../x", "___x"),
    ("/../../tmp/evil", "_.._.._tmp_evil"),
    ("..", "__"),
    (".hidden", "_hidden"),
    ("a/b\\c", "a_b_c"),
    ("new\nline\x00nul\x1b[31m", "new_line_nul_[31m"),
    ("bad-\udcff-bytes", "bad-_-bytes"),
    ("", "_"),
    ("nova", "nova"),
])
def test_safe_name(given: str, safe: str) -> None:
    assert safe_name(given) == safe
    assert safe_name(safe) == safe


def test_a_long_name_is_cut() -> None:
    name = safe_name("é" * 200)
    assert len(name.encode()) <= MAX_NAME_BYTES and name == "é" * (MAX_NAME_BYTES // 2)


def _outside(tmp_path: Path) -> list[Path]:
    """Every file under tmp_path that is not in logs/."""
    return [path for path in tmp_path.rglob("*") if path.is_file()
            and "logs" not in path.relative_to(tmp_path).parts
            and not path.name.endswith(".conf")]


@pytest.mark.parametrize("kind", ["dotdot", "absolute-escape", "hidden"])
def test_a_name_that_leaves_log_dir_is_made_safe(report_service, tmp_path: Path,
                                                   kind: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "evil").mkdir()
    depth = len(logs.parts)
    name = {"dotdot": "../x", "absolute-escape": "/" + "../" * depth + f"{tmp_path}/evil/evil",
            "hidden": ".x"}[kind]
    svc = report_service("--service-name", name, conf=f"[oslo_reports]\nlog_dir = {logs}\n")
    report = next_report(svc, logs)
    expected = safe_name(name)
    assert report.name.startswith(f"{expected}_gurumeditation_"), report.name
    assert "/" not in expected and not expected.startswith(".")
    assert not _outside(tmp_path)
    lines = [line for line in svc.stderr_lines if "service_name" in line]
    assert len(lines) == 1, svc.stderr_lines
    assert repr(name) in lines[0] and repr(expected) in lines[0]
    assert svc.alive()


def test_a_relative_log_dir_is_resolved_at_set_up(service, tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "logs").mkdir(parents=True)
    svc = service("named_service.py", "logs", "svc", "--chdir", str(elsewhere),
                  cwd=tmp_path).ready()
    report = next_report(svc, tmp_path / "logs")
    assert report.parent == tmp_path / "logs"
    assert not list((elsewhere / "logs").iterdir())


@pytest.mark.skipif(platform.machine() not in FUTEX, reason="futex syscall number unknown")
def test_the_degraded_report_stays_in_log_dir(service, twin_env, tmp_path: Path) -> None:
    if twin_env["GMR_TEST_TWIN"] == "py":
        pytest.skip("the pure twin has no watchdog")
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "evil").mkdir()
    name = "/" + "../" * len(logs.parts) + f"{tmp_path}/evil/evil"
    svc = service("named_service.py", str(logs), name, "--watchdog", "0.2", "--hold", "5")
    svc.ready()
    svc.wait_for_line("blocking")
    # The main thread is in the C call (holding the GIL) once it waits in futex.
    assert wait_in_futex(svc.pid)
    svc.kill()
    degraded = wait_for(lambda: [path for path in logs.glob("*_degraded*")
                                 if not path.name.startswith(".")], 4)
    assert degraded, (list(tmp_path.rglob("*")), svc.stderr_text())
    assert degraded[0].name.startswith(f"{safe_name(name)}_gurumeditation_")
    svc.wait_for_line("released")
    assert wait_for(lambda: reports(logs))
    assert not _outside(tmp_path)
