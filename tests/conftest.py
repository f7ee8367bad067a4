"""Shared fixtures: both capture twins, and a harness for real subprocesses."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"

#: Both twins, in every run: "c" is the compiled core, "py" the pure one.
TWINS = ["c", "py"]


def compiled_expected() -> bool:
    """The compiled core must load unless the run asks for the pure twin."""
    return os.environ.get("GMR_NO_EXTENSIONS", "") in ("", "0")


@pytest.fixture(params=TWINS)
def core(request: pytest.FixtureRequest) -> ModuleType:
    """The capture core module, once compiled and once pure."""
    if request.param == "py":
        return importlib.import_module("gmr._capture_py")
    if not compiled_expected():
        pytest.skip("GMR_NO_EXTENSIONS is set: the compiled core is not under test")
    return importlib.import_module("gmr._capture")


@pytest.fixture(params=TWINS)
def twin_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a subprocess that runs on one twin or the other."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    if request.param == "py":
        env["GMR_NO_EXTENSIONS"] = "1"
    elif not compiled_expected():
        pytest.skip("GMR_NO_EXTENSIONS is set: the compiled core is not under test")
    else:
        env.pop("GMR_NO_EXTENSIONS", None)
    env["GMR_TEST_TWIN"] = request.param
    return env


class Service:
    """A real subprocess running one of tests/programs: started, waited for
    (it prints "ready" on stdout), signalled, and always cleaned up."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.argv = argv
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout_lines: list[str] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for_line(self, prefix: str, timeout: float = 30.0) -> str:
        """The next stdout line that starts with prefix (others are kept)."""
        import selectors

        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no line {prefix!r} from {self.argv} in {timeout}s; "
                                       f"stdout so far: {self.stdout_lines}")
                if not selector.select(remaining):
                    continue
                raw = self.process.stdout.readline()
                if not raw:
                    raise EOFError(f"{self.argv} exited ({self.process.wait(5)}) before "
                                   f"{prefix!r}; stderr: {self.stderr_text()}")
                line = raw.decode(errors="replace").rstrip("\n")
                self.stdout_lines.append(line)
                if line.startswith(prefix):
                    return line
        finally:
            selector.close()

    def ready(self, timeout: float = 30.0) -> Service:
        self.wait_for_line("ready", timeout)
        return self

    def kill(self, signum: int = signal.SIGUSR2) -> None:
        os.kill(self.pid, signum)

    def alive(self) -> bool:
        return self.process.poll() is None

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """Wait for the service to exit; returns (code, stdout, stderr)."""
        out, err = self.process.communicate(timeout=timeout)
        stdout = "\n".join(self.stdout_lines) + out.decode(errors="replace")
        return self.process.returncode, stdout, err.decode(errors="replace")

    def stderr_text(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def service(twin_env: dict[str, str]) -> Iterator[object]:
    """service("program.py", *args, env={...}) starts tests/programs/program.py
    on the twin under test; every service is cleaned up after the test."""
    started: list[Service] = []

    def start(program: str, *args: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Service:
        merged = dict(twin_env)
        merged.update(env or {})
        proc = Service([sys.executable, str(PROGRAMS / program), *args], merged, cwd)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.cleanup()
