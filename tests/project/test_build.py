"""The build: the extension is optional unless asked for, and gmr installs
and runs on the pure twin where it cannot be compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.compiled_only, pytest.mark.timeout(600)]


def _source_copy(tmp_path: Path) -> Path:
    """The tracked source, without any extension built in place."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    source = tmp_path / "src"
    for name in files:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    return source


def _install(source: Path, target: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, **{"CC": "/bin/false", **env})
    environment.pop("GMR_NO_EXTENSIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        env=environment, capture_output=True, text=True, timeout=540,
    )


def test_install_without_a_compiler_runs_on_the_pure_twin(tmp_path: Path) -> None:
    source, target = _source_copy(tmp_path), tmp_path / "site"
    result = _install(source, target)
    assert result.returncode == 0, result.stderr
    assert not list((target / "gmr").glob("_*.so"))
    assert (target / "gmr" / "report.schema.json").is_file()  # package data
    # -S: no .pth files, so an editable install of gmr in this venv (its import
    # hook) cannot shadow the copy just installed; site-packages come back
    # through PYTHONPATH for gmr's dependencies.
    paths = [str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    probe = subprocess.run(
        [sys.executable, "-S", "-c",
         "import gmr._impl, gmr; print(gmr._impl.IMPLEMENTATION, gmr.__file__)"],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)), cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=True,
    )
    implementation, location = probe.stdout.split()
    assert implementation == "pure"
    assert location.startswith(str(target))


def test_required_extension_makes_a_failed_build_fatal(tmp_path: Path) -> None:
    source, target = _source_copy(tmp_path), tmp_path / "site"
    result = _install(source, target, GMR_REQUIRE_EXTENSION="1")
    assert result.returncode != 0


def _built_and_probed(tmp_path: Path, lines: list[str], **env: str) -> list[str]:
    """The tracked source built with a compiler and env, then the lines of
    code run against it: what they print, a line each."""
    source, target = _source_copy(tmp_path), tmp_path / "site"
    result = _install(source, target, CC=os.environ.get("CC", "cc"), **env)
    assert result.returncode == 0, result.stderr
    return _probe(target, tmp_path, "\n".join(lines)).splitlines()


def _probe(target: Path, cwd: Path, code: str) -> str:
    """Run code against the copy installed in target (see above for -S)."""
    paths = [str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    env.pop("GMR_NO_EXTENSIONS", None)
    return subprocess.run([sys.executable, "-S", "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=True).stdout


@pytest.mark.skipif(sys.version_info < (3, 13), reason="debug offsets exist from 3.13")
def test_a_walker_built_for_another_layout_is_refused(tmp_path: Path) -> None:
    """The walker's offsets are checked against the interpreter's own at
    import: a build that expects the frame's `previous` elsewhere is refused,
    the pure walker captures, the trigger and files stay compiled, and the
    report header says why."""
    out = _built_and_probed(tmp_path, [
        "import gmr, gmr._impl as i",
        "print(i.walker.IMPLEMENTATION, i.trigger.IMPLEMENTATION, i.files.IMPLEMENTATION)",
        "print(i.FALLBACK)",
        "print([line for line in gmr.TextGuruMeditation('1').run().splitlines()",
        "       if line.strip().startswith('capture =')][0])",
    ], GMR_LAYOUT_SKEW="8")
    assert out[0] == "pure compiled compiled"
    assert out[1].startswith("pure-Python walker on CPython ")
    assert "interpreter_frame.previous" in out[1] and "a longer pause" in out[1]
    assert "capture = pure (pure-Python walker" in out[2]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="debug offsets exist from 3.13")
def test_the_walker_for_newer_pythons_reads_only_debug_offsets(tmp_path: Path) -> None:
    """The walker a CPython newer than the newest known gets (every field
    found through the interpreter's debug offsets, their table assumed laid
    out as 3.15's), built here on purpose: on 3.15 it checks out and reads
    the same stacks as the pure walker; on 3.13 and 3.14, whose tables are
    laid out otherwise, its check refuses it before it reads a wrong field."""
    out = _built_and_probed(tmp_path, [
        "import threading, greenlet, gmr._impl as i, gmr._walker_py as pure",
        "print(i.walker.IMPLEMENTATION, i.FALLBACK)",
        "parked = threading.Event()",
        "def wait_here(): parked.wait()",
        "thread = threading.Thread(target=wait_here); thread.start()",
        "def green(): greenlet.getcurrent().parent.switch()",
        "kept = [greenlet.greenlet(green) for _ in range(3)]",
        "[g.switch() for g in kept]",
        "def stacks(core):",
        "    raw = core.capture(greenlet.greenlet)",
        "    threads = {raw.thread(n)[0]: raw.thread(n)[2] for n in range(raw.threads)}",
        "    columns = raw.greenlet_columns()",
        "    return threads[thread.ident], sorted(map(repr, zip(*columns[2:])))",
        "if i.walker.IMPLEMENTATION == 'compiled':",
        "    print(stacks(i.walker) == stacks(pure))",
        "parked.set(); thread.join()",
    ], GMR_WALKER_OFFSETS="1")
    if sys.version_info[:2] == (3, 15):
        assert out == ["compiled None", "True"]
    else:
        assert out[0].startswith("pure pure-Python walker on CPython ")
        assert "its frame layouts do not check out" in out[0]
