"""Never silent: where a native unit runs on its pure twin, setup_autorun says
so in one line on stderr (once per process) and every report's header says
it beside the capture core; with every unit compiled, neither says anything."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import PROGRAMS, ROOT, Service, compiled_expected, next_report, validate_report

pytestmark = pytest.mark.timeout(120)

Start = Callable[..., Service]

needs_compiled = pytest.mark.skipif(
    not compiled_expected(), reason="GMR_NO_EXTENSIONS is set: the compiled core is not under test")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """start(*wrapper, args=(...), no_extensions=False, conf=""):
    tests/programs/report_service.py, run through a wrapper program when one
    is given, on the twins no_extensions says, whatever the run's own."""
    started: list[Service] = []

    def run(*wrapper: str, args: tuple[str, ...] = (), no_extensions: bool = False,
            conf: str = "") -> Service:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("GMR_NO_EXTENSIONS", None)
        if no_extensions:
            env["GMR_NO_EXTENSIONS"] = "1"
        config = tmp_path / f"service-{len(started)}.conf"
        config.write_text(conf)
        svc = Service([sys.executable, *wrapper, str(PROGRAMS / "report_service.py"), *args,
                       "--config-file", str(config)], env)
        started.append(svc)
        return svc.ready()

    yield run
    for svc in started:
        svc.cleanup()


def gmr_lines(svc: Service) -> list[str]:
    """Every line gmr wrote on the service's stderr: read once it has ended,
    so that none can still be on its way."""
    svc.process.terminate()
    svc.finish()
    return [line for line in svc.stderr_lines if line.startswith("gmr:")]


def header_capture(text: str) -> str:
    """What the text header says after "capture = "."""
    (stated,) = re.findall(r"^capture = (.*)$", text, re.MULTILINE)
    return str(stated)


def test_no_extensions_one_line_on_stderr_and_in_the_header(start, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(args=("--log-dir", str(logs), "--twice"), no_extensions=True)
    text = next_report(svc, logs).read_text()
    lines = gmr_lines(svc)
    assert len(lines) == 1, lines  # setup_autorun ran twice: said once
    fallback = lines[0].removeprefix("gmr: ")
    assert fallback.startswith("pure-Python trigger, walker, files on "
                               f"CPython {sys.version.split()[0]} "
                               "(GMR_NO_EXTENSIONS is set): "), fallback
    assert "no report while the main thread is stuck in C, no watchdog" in fallback
    assert header_capture(text) == f"pure ({fallback})"


@pytest.mark.compiled_only
@needs_compiled
def test_a_walker_that_does_not_import_is_named_and_the_report_still_comes(
        start, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(str(PROGRAMS / "without_walker.py"), args=("--log-dir", str(logs)),
                conf="[oslo_reports]\nformat = json\n")
    header = validate_report(next_report(svc, logs).read_text())["header"]
    (line,) = gmr_lines(svc)
    fallback = line.removeprefix("gmr: ")
    # Only the walker: the trigger and the files units loaded compiled.
    assert fallback.startswith(f"pure-Python walker on CPython {sys.version.split()[0]} "
                               "(gmr._walker does not import: "), fallback
    assert "None in sys.modules" in fallback  # the ImportError's own words
    assert fallback.endswith("): a longer pause, frame objects made for every frame read")
    # Captured by the pure walker, and the header says why.
    assert header["capture"] == "pure"
    assert header["core_fallback"] == fallback


@pytest.mark.compiled_only
@needs_compiled
def test_compiled_says_nothing(start, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = start(args=("--log-dir", str(logs), "--twice"))
    text = next_report(svc, logs).read_text()
    assert gmr_lines(svc) == []
    assert header_capture(text) == "compiled"


def test_json_header_carries_this_process_fallback() -> None:
    from gmr import _impl
    from gmr.guru import TextGuruMeditation

    header = validate_report(TextGuruMeditation("1").run(format="json"))["header"]
    assert header["core_fallback"] == _impl.FALLBACK
    assert header["capture"] == _impl.IMPLEMENTATION
    text = TextGuruMeditation("1").run()
    beside = f" ({_impl.FALLBACK})" if _impl.FALLBACK is not None else ""
    assert header_capture(text) == _impl.IMPLEMENTATION + beside
