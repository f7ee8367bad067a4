"""Drop-in fidelity: what OpenStack projects pass to oslo.reports gives
what oslo.reports would show (or better, where it shows nothing useful).

- The default report name keeps the program's name as oslo.reports does
  (os.path.basename of the outermost frame's file): ``service.py`` gives
  ``service.py_gurumeditation_<ts>``, for the full and the degraded report;
  ``python -m pkg.mod`` gives the module (oslo.reports: "runpy.py") and
  ``-c`` the interpreter (oslo.reports: "<string>").
- A version module holding a pbr ``version_info`` (aodh, barbican,
  ceilometer, heat, ironic, watcher: ``from aodh import version``) shows its
  package and release (oslo.reports shows vendor, product and version as
  None); a module with neither shows its name and no path; a version method
  that raises is that field's one line, and the Package section stays.
- Configuration: groups and options sorted (DEFAULT first), in text and JSON.
- A registered section returning an oslo.reports model renders through the
  model's own view, as oslo.reports' text report shows it, escaped by gmr.

Real pbr and real oslo.reports, installed in every test venv.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    FUTEX,
    ROOT,
    Service,
    next_report,
    section,
    validate_report,
    wait_for,
    wait_in_futex,
)
from gmr import report
from gmr.guru import TextGuruMeditation

pytestmark = pytest.mark.timeout(60)

BANNER = re.compile(r"^====(.{64})====$", re.MULTILINE)

#: A service as a project writes it (nova/cmd/*.py, aodh/cmd/*.py), run as
#: the script service.py from its own directory, beside its project package.
SERVICE = '''\
"""service.py LOG_DIR [--version pbr|bare|nova] [--models] [--hold SECONDS]"""
import argparse
import ctypes
import os
import time

from oslo_config import cfg

from gmr import guru
from gmr import opts as gmr_opts

parser = argparse.ArgumentParser()
parser.add_argument("log_dir")
parser.add_argument("--version", default="pbr")
parser.add_argument("--models", action="store_true")
parser.add_argument("--hold", type=int, default=0)
args = parser.parse_args()

if args.version == "pbr":
    from fakeproj import version
elif args.version == "bare":
    from fakeproj import bare as version
else:
    version = "1.0"


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def hold_the_gil(seconds):
    """pthread_mutex_timedlock on a mutex this thread holds, through
    ctypes.PyDLL, which keeps the GIL across the call."""
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)
    libc.pthread_mutex_lock(mutex)
    deadline = Timespec(int(time.time()) + seconds, 0)
    ctypes.PyDLL(None).pthread_mutex_timedlock(mutex, ctypes.byref(deadline))


conf = cfg.ConfigOpts()
conf.register_opts([cfg.StrOpt("zeta", default="z"), cfg.StrOpt("alpha", default="a")])
gmr_opts.set_defaults(conf, watchdog_timeout=0.2)
conf([], project="fakeproj")
if args.models:
    from oslo_reports.generators import conf as conf_generator
    from oslo_reports.models import base
    from oslo_reports.views.text import generic

    guru.TextGuruMeditation.register_section(
        "Oslo Config", conf_generator.ConfigReportGenerator(conf))
    guru.TextGuruMeditation.register_section(
        "Oslo Viewed", lambda: base.ReportModel(
            data={"b": [2, 1], "a": {"y": "why", "x": "ex"}},
            attached_view=generic.KeyValueView()))
    guru.TextGuruMeditation.register_section(
        "Oslo Forged", lambda: base.ReportModel(
            data={}, attached_view=lambda model: "=" * 72 + "\\n====forged====\\n\\x1b[31mred"))
guru.TextGuruMeditation.setup_autorun(version, log_dir=args.log_dir, conf=conf)
os.write(1, b"ready\\n")
if args.hold:
    os.write(1, b"blocking\\n")
    hold_the_gil(args.hold)
    os.write(1, b"released\\n")
while True:
    time.sleep(0.05)
'''

#: The project's version.py, as aodh, heat, ironic write it; pbr reads the
#: release of an installed distribution (oslo.config: in every test venv).
PROJECT = {
    "fakeproj/__init__.py": "",
    "fakeproj/version.py": "import pbr.version\n\n"
                           "version_info = pbr.version.VersionInfo('oslo.config')\n",
    "fakeproj/bare.py": "NAME = 'not a version'\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding service.py, its package and an empty logs/."""
    for name, text in {"service.py": SERVICE, **PROJECT}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "logs").mkdir()
    return tmp_path


@pytest.fixture
def start(project: Path, twin_env: dict[str, str]) -> Iterator[Callable[..., Service]]:
    """start(*args): python service.py logs *args, from the project's directory."""
    started: list[Service] = []

    def run(*args: str) -> Service:
        svc = Service([sys.executable, "service.py", str(project / "logs"), *args],
                      twin_env, cwd=project)
        started.append(svc)
        return svc.ready()

    yield run
    for svc in started:
        svc.cleanup()


def section_text(text: str, title: str) -> str:
    """The lines between a section's banner and the next banner."""
    start = re.search(rf"^====\s*{re.escape(title)}\s*====\n={{72}}\n", text, re.MULTILINE)
    assert start, title
    rest = text[start.end():]
    end = re.search(r"^={72}\n====", rest, re.MULTILINE)
    return rest[:end.start()] if end else rest


# -- 1. the default report name ------------------------------------------------------


def test_a_script_keeps_its_name_in_the_report_file(start, project: Path) -> None:
    svc = start("--version", "nova")
    found = next_report(svc, project / "logs")
    assert re.fullmatch(r"service\.py_gurumeditation_\d{14}", found.name), found.name


@pytest.mark.skipif(platform.machine() not in FUTEX, reason="futex syscall number unknown")
def test_the_degraded_report_keeps_the_script_name(start, project: Path, twin_env) -> None:
    if twin_env["GMR_TEST_TWIN"] == "py":
        pytest.skip("the pure twin has no watchdog")
    logs = project / "logs"
    svc = start("--version", "nova", "--hold", "5")
    svc.wait_for_line("blocking")
    assert wait_in_futex(svc.pid)  # in the C call, holding the GIL
    svc.kill()
    degraded = wait_for(lambda: [path for path in logs.glob("*_degraded*")
                                 if not path.name.startswith(".")], 4)
    assert degraded, svc.stderr_text()
    assert re.fullmatch(r"service\.py_gurumeditation_\d{14}_degraded", degraded[0].name), \
        degraded[0].name
    svc.wait_for_line("released")
    full = wait_for(lambda: [path for path in logs.iterdir()
                             if not path.name.startswith(".") and "degraded" not in path.name])
    assert [path.name.split("_gurumeditation_")[0] for path in full] == ["service.py"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["service.py"], "service.py"),
    (["nova-api"], "nova-api"),  # a console script, /usr/bin/nova-api
    (["-m", "fakeproj.named"], "fakeproj.named"),  # oslo.reports: runpy.py
    (["-c", "import fakeproj.named"], Path(sys.executable).name),  # oslo.reports: <string>
])
def test_the_program_name_of_each_way_to_run(project: Path, argv: list[str],
                                             expected: str) -> None:
    printer = "from gmr.guru import program_name\nprint(program_name())\n"
    (project / "fakeproj" / "named.py").write_text(printer)
    (project / "service.py").write_text(printer)
    (project / "nova-api").write_text(printer)
    if (project / argv[0]).is_file():  # by its whole path, as a console script runs
        argv = [str(project / argv[0]), *argv[1:]]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, *argv], cwd=project, env=env, capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert out.strip() == expected


# -- 2. a version module --------------------------------------------------------------


def test_a_version_module_with_pbr_version_info(start, project: Path) -> None:
    """aodh, heat, ironic: setup_autorun(version), a module whose
    version_info is a real pbr VersionInfo."""
    svc = start("--version", "pbr")
    text = next_report(svc, project / "logs").read_text()
    release = importlib.metadata.version("oslo.config")
    assert section_text(text, "Package") == (f"product = oslo.config\nvendor = \n"
                                             f"version = {release}\n")


def test_a_module_without_version_information_shows_its_name_only(start,
                                                                   project: Path) -> None:
    svc = start("--version", "bare")
    text = next_report(svc, project / "logs").read_text()
    package = section_text(text, "Package")
    assert package == "product = \nvendor = \nversion = <module 'fakeproj.bare'>\n"
    assert str(project) not in package


def test_a_version_method_that_raises_keeps_the_package_section(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pbr's VersionInfo for a project it cannot find (not installed, and
    no git repository around) raises from each of its methods: the product
    still shows, the version says why it is not."""
    pbr_version = pytest.importorskip("pbr.version")
    monkeypatch.chdir(tmp_path)
    info = pbr_version.VersionInfo("no-such-project-installed")
    data = report.package_data(info)
    assert data["product"] == "no-such-project-installed"
    assert data["version"] is not None
    assert data["version"].startswith("<release_string() failed: Exception: ")
    assert "\n" not in data["version"]

    class Nova:
        def vendor_string(self) -> str:
            return "Vendor"

        def product_string(self) -> str:
            raise RuntimeError("no product\nsecond line")

        def version_string_with_package(self) -> str:
            return "1.2.3-1"

    text = TextGuruMeditation(Nova()).run()
    assert section_text(text, "Package") == (
        "product = <product_string() failed: RuntimeError: no product>\n"
        "vendor = Vendor\nversion = 1.2.3-1\n")


# -- 3. configuration, sorted -----------------------------------------------------------


def test_configuration_is_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups sorted after DEFAULT, options sorted in each, whatever the
    order they were registered in, in text and JSON."""
    cfg = pytest.importorskip("oslo_config.cfg")
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("zulu_opt", default="1"), cfg.StrOpt("mike", default="2"),
                        cfg.IntOpt("alpha", default=3)])
    conf.register_opts([cfg.StrOpt("zz", default="z"), cfg.StrOpt("aa", default="a")],
                       group="zebra")
    conf.register_opts([cfg.StrOpt("yy", default="y"), cfg.StrOpt("bb", default="b")],
                       group="api")
    conf.register_opts([cfg.StrOpt("one", default="1")], group="middle")
    conf([], project="sorted")
    monkeypatch.setattr(TextGuruMeditation._settings, "conf", conf)

    text = section_text(TextGuruMeditation("1").run(), "Configuration")
    groups = [line[:-2] for line in text.splitlines() if line and not line.startswith(" ")]
    assert groups == ["default", "api", "middle", "zebra"]
    blocks = {block.splitlines()[0][:-2]: [line.split(" = ")[0].strip()
                                           for line in block.splitlines()[1:]]
              for block in text.strip("\n").split("\n\n")}
    assert blocks["default"] == sorted(blocks["default"])
    assert {"alpha", "mike", "zulu_opt"} <= set(blocks["default"])
    assert blocks["api"] == ["bb", "yy"] and blocks["zebra"] == ["aa", "zz"]

    document = validate_report(TextGuruMeditation("1").run(format="json"))
    data = section(document, "configuration")
    assert list(data) == ["default", "api", "middle", "zebra"]
    assert all(list(options) == sorted(options) for options in data.values())
    assert list(data["api"]) == ["bb", "yy"]


# -- 4. oslo.reports models in registered sections ----------------------------------------


def oslo_text(title: str, generator: Callable[[], Any]) -> str:
    """What oslo.reports' own text report shows in the section."""
    oslo_report = pytest.importorskip("oslo_reports.report")
    text_report = oslo_report.TextReport("x")
    text_report.add_section(title, generator)
    return section_text(text_report.run() + "\n", title)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """registered((title, generator), ...): the sections of this test only."""
    def register(*sections: tuple[str, Callable[[], Any]]) -> None:
        monkeypatch.setattr(TextGuruMeditation, "_registered", list(sections))

    return register


def test_models_render_through_their_own_views(registered, monkeypatch) -> None:
    pytest.importorskip("oslo_reports")
    cfg = pytest.importorskip("oslo_config.cfg")
    from oslo_reports.generators import conf as conf_generator
    from oslo_reports.models import base, with_default_views
    from oslo_reports.views.text import generic

    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("zeta", default="z"), cfg.StrOpt("alpha", default="a")])
    conf.register_opts([cfg.StrOpt("pw", default="hunter22", secret=True)], group="db")
    conf([], project="models")
    monkeypatch.setattr(TextGuruMeditation._settings, "conf", conf)
    sections: dict[str, Callable[[], Any]] = {
        "Key Value": lambda: base.ReportModel(
            data={"b": [3, 1], "a": {"y": "why", "x": "ex"}}, attached_view=generic.KeyValueView()),
        "Default Views": lambda: with_default_views.ModelWithDefaultViews(
            {"k": "v", "list": ["b", "a"], "sub": {"z": 1, "c": 2}}),
        "Table": lambda: base.ReportModel(
            data={"rows": [{"n": "one", "v": 1}, {"n": "two", "v": 2}]},
            attached_view=generic.TableView(["Name", "Value"], ["n", "v"], "rows")),
        "Config Generator": conf_generator.ConfigReportGenerator(conf),
    }
    registered(*sections.items())
    text = TextGuruMeditation("1").run()
    for title, generator in sections.items():
        # gmr's lines end each section with one newline; oslo.reports adds
        # one to a view's text that ends with its own.
        assert section_text(text, title) == oslo_text(title, generator).rstrip("\n") + "\n", \
            title
    assert "pw = ***" in section_text(text, "Config Generator")
    assert "hunter22" not in text

    # JSON: each model's data, made plain; strict and valid.
    document = validate_report(TextGuruMeditation("1").run(format="json"))
    custom = {entry["title"]: entry["data"] for entry in document["sections"]
              if entry["kind"] == "custom"}
    assert custom["Key Value"] == {"b": [3, 1], "a": {"y": "why", "x": "ex"}}
    assert custom["Config Generator"]["db"] == {"pw": "***"}


def test_a_thread_generator_renders_as_oslo_reports_shows_it(registered) -> None:
    pytest.importorskip("oslo_reports")
    from oslo_reports.generators import threading as thread_generator

    registered(("Oslo Threads", thread_generator.ThreadReportGenerator()))
    text = section_text(TextGuruMeditation("1").run(), "Oslo Threads")
    assert re.search(r"^-{6} +Thread #\d+ +-{6}$", text, re.MULTILINE), text
    assert "in test_a_thread_generator_renders_as_oslo_reports_shows_it" in text
    assert "{'thread_id'" not in text and "stack_trace = " not in text
    json.loads(TextGuruMeditation("1").run(format="json"))


def test_a_model_without_a_view_shows_its_data(registered) -> None:
    """oslo.reports cannot make it text at all (its whole report fails):
    gmr shows its data as a mapping."""
    pytest.importorskip("oslo_reports")
    from oslo_reports.models import base

    registered(("No View", lambda: base.ReportModel(data={"b": 2, "a": 1})))
    assert section_text(TextGuruMeditation("1").run(), "No View") == "b = 2\na = 1\n"


def test_a_model_view_cannot_forge_the_report(registered) -> None:
    pytest.importorskip("oslo_reports")
    from oslo_reports.models import base

    def forged(model: Any) -> str:
        return ("=" * 72 + "\n====" + "Configuration".center(64) + "====\n" + "=" * 72
                + "\n\x1b[31mred\u2028next\ud800\nsecret=hunter22\n")

    def broken(model: Any) -> str:
        raise RuntimeError("view broke")

    registered(("Forged", lambda: base.ReportModel(data={"k": "v"}, attached_view=forged)),
               ("Broken", lambda: base.ReportModel(data={"k": "v"}, attached_view=broken)))
    text = TextGuruMeditation("1").run()
    titles = [match.strip() for match in BANNER.findall(text) if set(match) != {"="}]
    assert titles.count("Configuration") == 1
    body = section_text(text, "Forged")
    assert body.splitlines() == [
        "\\x3d" + "=" * 71, "\\x3d===" + "Configuration".center(64) + "====",
        "\\x3d" + "=" * 71, "\\x1b[31mred", "next\\ud800", "secret=***"]
    assert section_text(text, "Broken") == "gmr: section failed: RuntimeError: view broke\n"
    document = validate_report(TextGuruMeditation("1").run(format="json"))
    (entry,) = [entry for entry in document["sections"] if entry["title"] == "Forged"]
    assert entry["data"] == {"k": "v"} and entry["error"] is None


def test_model_sections_through_a_signal(start, project: Path) -> None:
    """The service registers oslo.reports generators and models; SIGUSR2
    gives a report that shows them through their views."""
    pytest.importorskip("oslo_reports")
    svc = start("--version", "nova", "--models")
    text = next_report(svc, project / "logs").read_text()
    config = section_text(text, "Oslo Config")
    assert config.startswith("\ndefault: \n  alpha = a\n")
    assert "\noslo_reports: \n" in config
    assert section_text(text, "Oslo Viewed") == "a = \n  x = ex\n  y = why\nb = \n  1\n  2\n"
    assert section_text(text, "Oslo Forged") == ("\\x3d" + "=" * 71 + "\n\\x3d===forged====\n"
                                                 "\\x1b[31mred\n")
    assert svc.alive()
