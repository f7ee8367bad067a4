"""Shared fixtures: both capture twins, and a harness for real subprocesses."""

from __future__ import annotations

import importlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any, TypeVar

import pytest

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
GOLDEN = Path(__file__).resolve().parent / "golden"

#: Both twins, in every run: "c" is the compiled core, "py" the pure one.
TWINS = ["c", "py"]


def wait_for(predicate: Callable[[], T], timeout: float = 10.0) -> T:
    """Poll predicate until it gives something true or timeout passes; its
    last value either way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return predicate()


#: System call numbers by machine, for the handshakes below: a thread
#: blocked in one of these shows its number first in
#: /proc/<pid>/task/<tid>/syscall. futex: pthread_mutex_timedlock, a lock or
#: condition wait; the others: time.sleep, select(), a blocking read().
SYSCALLS = {
    "x86_64": {"read": 0, "poll": 7, "select": 23, "nanosleep": 35, "futex": 202,
               "clock_nanosleep": 230, "pselect6": 270, "ppoll": 271},
    "aarch64": {"read": 63, "pselect6": 72, "ppoll": 73, "nanosleep": 101, "futex": 98,
                "clock_nanosleep": 115},
}
#: The futex system call's number, by machine.
FUTEX = {machine: numbers["futex"] for machine, numbers in SYSCALLS.items()}

#: What time.sleep() and select.select() wait in, by name (the first the
#: machine knows is used).
SLEEP_CALLS = ("clock_nanosleep", "nanosleep", "select", "pselect6")
SELECT_CALLS = ("select", "pselect6", "poll", "ppoll")


def in_syscall(pid: int, tid: int | None, names: tuple[str, ...] | str) -> bool:
    """Whether thread tid of pid (its main thread by default) is blocked in
    one of the named system calls now."""
    import platform

    known = SYSCALLS[platform.machine()]
    wanted = {str(known[name]) for name in ([names] if isinstance(names, str) else names)
              if name in known}
    try:
        first = Path(f"/proc/{pid}/task/{tid or pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return first in wanted


def wait_in_syscall(pid: int, names: tuple[str, ...] | str, tid: int | None = None,
                    timeout: float = 10.0) -> bool:
    """Wait until thread tid of pid (its main thread by default) is blocked
    in one of the named system calls, as /proc/<pid>/task/<tid>/syscall says:
    a fact, not a sleep."""
    return bool(wait_for(lambda: in_syscall(pid, tid, names), timeout))


def wait_in_futex(pid: int, tid: int | None = None, timeout: float = 10.0) -> bool:
    """Wait until thread tid of pid (its main thread by default) is blocked
    in futex (pthread_mutex_timedlock, a lock or a condition)."""
    return wait_in_syscall(pid, "futex", tid, timeout)


def signal_mask(pid: int, field: str, tid: int | None = None) -> int:
    """A signal mask of /proc/<pid>/status (or of one thread's status):
    SigCgt (caught), SigIgn, SigPnd (pending for that thread), ShdPnd
    (pending for the process)."""
    where = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    for line in Path(where).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1], 16)
    raise KeyError(field)


def catches(pid: int, signum: int) -> bool:
    """Whether pid has a handler installed for signum."""
    return bool(signal_mask(pid, "SigCgt") & (1 << (signum - 1)))


def pending(pid: int, signum: int) -> bool:
    """Whether signum waits to be delivered to pid or to any of its threads."""
    bit = 1 << (signum - 1)
    if signal_mask(pid, "ShdPnd") & bit:
        return True
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            if signal_mask(pid, "SigPnd", int(task)) & bit:
                return True
        except OSError:
            continue  # a thread that has just ended
    return False


def thread_ids(pid: int, name: str) -> list[int]:
    """The threads of pid whose kernel name (comm) is name."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            if Path(f"/proc/{pid}/task/{task}/comm").read_text().strip() == name:
                found.append(int(task))
        except OSError:
            continue  # a thread that has just ended
    return found


def gmr_armed(pid: int, signum: int = signal.SIGUSR2) -> bool:
    """Whether pid runs gmr's watcher thread and catches signum (what the CLI
    checks before it signals)."""
    try:
        return catches(pid, signum) and bool(thread_ids(pid, "gmr-watcher"))
    except OSError:
        return False


def reports(directory: Path) -> list[Path]:
    """The complete reports gmr has written in directory, by name."""
    return sorted(p for p in directory.iterdir() if "_gurumeditation_" in p.name
                  and not p.name.startswith(".") and not p.name.endswith("_degraded"))


def next_report(svc: Service, directory: Path, timeout: float = 30.0) -> Path:
    """SIGUSR2 the service; the report it then writes in directory."""
    before = set(reports(directory))
    svc.kill()
    new = wait_for(lambda: [path for path in reports(directory) if path not in before], timeout)
    assert len(new) == 1, (new, svc.stderr_text())
    return new[0]


def validate_report(text: str) -> dict[str, Any]:
    """A JSON report, parsed and checked against gmr's shipped JSON Schema."""
    import jsonschema

    from gmr.render import json_schema

    document: dict[str, Any] = json.loads(text)
    validator = jsonschema.Draft202012Validator(
        json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(error.path)}: {error.message[:300]}"
                                 for error in errors)
    return document


def section(document: dict[str, Any], kind: str) -> Any:
    """The data of the one section of that kind in a parsed JSON report."""
    (found,) = [entry for entry in document["sections"] if entry["kind"] == kind]
    return found["data"]


def compiled_expected() -> bool:
    """The compiled core must load unless the run asks for the pure twin."""
    return os.environ.get("GMR_NO_EXTENSIONS", "") in ("", "0")


#: The native units; each is gmr._<unit> compiled and gmr._<unit>_py pure.
UNITS = ("walker", "trigger", "files")


def twin(param: str) -> SimpleNamespace:
    """Every name of the three units of one twin ("c" or "py") in one place."""
    suffix = "" if param == "c" else "_py"
    names: dict[str, Any] = {}
    for unit in UNITS:
        module = importlib.import_module(f"gmr._{unit}{suffix}")
        names.update((name, getattr(module, name)) for name in dir(module)
                     if not name.startswith("__"))
    return SimpleNamespace(**names)


@pytest.fixture(params=TWINS)
def core(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The capture core's units, once compiled and once pure."""
    if request.param == "c" and not compiled_expected():
        pytest.skip("GMR_NO_EXTENSIONS is set: the compiled core is not under test")
    return twin(request.param)


#: Whether this run starts services on the pure twin too (the "py" param of
#: twin_env). scripts/test turns it off (GMR_TEST_PURE_PROCESSES=0) in the
#: whole-suite run of every Python but the oldest, and those tests are left
#: out at collection. What that loses: nothing the suite tells apart. The
#: pure twin's three units are plain Python with no branch by version, and
#: the unit tests (the `core` fixture) run them on both twins on every
#: Python; gmr's own branches by version run on the compiled twin's
#: services on every Python; the pure twin's services run end to end on the
#: oldest Python, and on the newest in the pure-only run
#: (GMR_NO_EXTENSIONS=1), which they would only repeat there. A test whose
#: pure-twin service goes through a branch of gmr's for one Python into the
#: twin (3.13's fork point, resumed by the twin's pending call) is marked
#: pure_services_everywhere and keeps both twins on every Python.
#: Run by hand, pytest starts every service on both twins.
PURE_PROCESSES = os.environ.get("GMR_TEST_PURE_PROCESSES", "1") != "0"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pure_services_everywhere: its services run on the pure twin on every "
                   "Python, even where GMR_TEST_PURE_PROCESSES=0 (see tests/conftest.py)")


#: How many tests _pure_service_left_out left out of this run.
_LEFT_OUT = pytest.StashKey[int]()


def _pure_service_left_out(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (not PURE_PROCESSES and compiled_expected() and callspec is not None
            and callspec.params.get("twin_env") == "py"
            and item.get_closest_marker("pure_services_everywhere") is None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    left_out = [item for item in items if _pure_service_left_out(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _pure_service_left_out(item)]
        config.stash[_LEFT_OUT] = len(left_out)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} tests of services on the pure twin left out "
            "(GMR_TEST_PURE_PROCESSES=0: they run on the oldest Python and in the pure-only "
            "run; tests/conftest.py says why)")


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
    (it prints "ready" on stdout), signalled, and always cleaned up.

    A reader thread per stream collects lines as they come, so a wait sees a
    line the moment the program prints it."""

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
        self.stderr_lines: list[str] = []
        self._seen = 0  # stdout lines already returned by wait_for_line
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._collect, args=(self.process.stdout, self.stdout_lines),
                             daemon=True),
            threading.Thread(target=self._collect, args=(self.process.stderr, self.stderr_lines),
                             daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: IO[bytes], lines: list[str]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                with self._changed:
                    lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self._changed.notify_all()
        finally:
            # The reader closes what it reads: cleanup() cannot while it reads.
            stream.close()
            with self._changed:
                self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _await(self, look: Callable[[], T | None], wanted: str, timeout: float) -> T:
        """What look() finds in the output, called each time a line comes
        (with the lines' lock held), until timeout or the end of the output."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = look()
                if found is not None:
                    return found
                if not self._readers[0].is_alive():
                    raise EOFError(f"{self.argv} ended its output (exit {self.process.poll()}) "
                                   f"before {wanted}; stdout: {self.stdout_lines}; "
                                   f"stderr: {self.stderr_text()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {wanted} from {self.argv} in {timeout}s; "
                                       f"stdout so far: {self.stdout_lines}")
                self._changed.wait(remaining)

    def wait_for_line(self, prefix: str, timeout: float = 30.0) -> str:
        """The next stdout line that starts with prefix (earlier lines are
        passed over, and stay in stdout_lines)."""
        def look() -> str | None:
            while self._seen < len(self.stdout_lines):
                line = self.stdout_lines[self._seen]
                self._seen += 1
                if line.startswith(prefix):
                    return line
            return None

        return self._await(look, f"line {prefix!r}", timeout)

    def lines(self, prefix: str) -> list[str]:
        """Every stdout line so far that starts with prefix."""
        with self._changed:
            return [line for line in self.stdout_lines if line.startswith(prefix)]

    def wait_for_lines(self, prefix: str, count: int, timeout: float = 30.0) -> list[str]:
        """Wait until stdout holds at least count lines that start with
        prefix (in any order with other lines, seen or not by
        wait_for_line); all of them."""
        def look() -> list[str] | None:
            found = [line for line in self.stdout_lines if line.startswith(prefix)]
            return found if len(found) >= count else None

        return self._await(look, f"{count} lines {prefix!r}", timeout)

    def ready(self, timeout: float = 30.0) -> Service:
        self.wait_for_line("ready", timeout)
        return self

    def kill(self, signum: int = signal.SIGUSR2) -> None:
        os.kill(self.pid, signum)

    def alive(self) -> bool:
        return self.process.poll() is None

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """Wait for the service to exit; returns (code, stdout, stderr)."""
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code, "\n".join(self.stdout_lines), self.stderr_text()

    def stderr_text(self) -> str:
        with self._changed:
            return "\n".join(self.stderr_lines)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        # Each reader closes its pipe at its end. One still reading after
        # this (a process of its own, such as a uWSGI worker whose master
        # is gone, holds the pipe) is a daemon thread, left to it: closing
        # the pipe under its read would wait for that read.
        for reader in self._readers:
            reader.join(5)


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


@pytest.fixture
def report_service(service, tmp_path: Path):  # type: ignore[no-untyped-def]
    """report_service(*args, conf="", env=None, ready=True): tests/programs/report_service.py
    reading an oslo.config file that holds conf, started (and waited for, unless
    ready=False: then several can start side by side)."""
    configs = itertools.count()

    def start(*args: str, conf: str = "", env: dict[str, str] | None = None,
              ready: bool = True) -> Service:
        config = tmp_path / f"service-{next(configs)}.conf"
        config.write_text(conf)
        proc: Service = service("report_service.py", *args, "--config-file", str(config),
                                env=env)
        return proc.ready() if ready else proc

    return start
