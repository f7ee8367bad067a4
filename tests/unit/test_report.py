"""Golden files of whole reports: hand-made snapshots through report.build()
and the renderers, compared line by line with tests/golden/report_*.

Any change of the report's text or JSON shows up as a diff of a golden file.
After a change that is meant, rewrite them and review the diff::

    GMR_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_report.py

Nothing here is captured from the running test process: the threads,
greenlets and tasks are built by hand from code objects compiled from the
fixed sources below, under fixed file names. What report.build() reads from
the living process (the source files, /proc, the pid, the user database,
sys.argv, the GC's frozen count, gevent's records, asyncio's tasks) is fixed
by monkeypatching the module-level reader of that fact; the report model and
the renderers run as they are.

The text is the same on every Python (3.10 to 3.15): every hand-made
function is a top-level one (3.10 has no co_qualname: a method would be
"run" there and "Worker.run" on 3.11+), and each frame's instruction is
looked up from the line it should stand on (offsets differ between
versions, lines do not).
"""

from __future__ import annotations

import asyncio  # noqa: F401 (imported: the report has its Asyncio Tasks section)
import difflib
import json
import linecache
import os
import re
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg

from conftest import GOLDEN, validate_report
from gmr import facts, greenlets, pools, render, report, resolve, snapshot, tasks, waits

UPDATE = os.environ.get("GMR_UPDATE_GOLDEN", "") not in ("", "0")

# -- Fixed sources -------------------------------------------------------------

SERVICE_FILE = "/srv/app/service.py"
# Written with escapes on purpose: the source holds a real ESC, tab, U+2028
# and U+202E, and its lines must reach the report escaped, each on its line.
SERVICE_SOURCE = '''\
"""A small service: where the hand-made stacks stand."""
import sys


def main(argv):
    server = build_server(argv)
    return serve_forever(server)


def serve_forever(server):
    while True:
        handle(server.accept())


def handle(request):
    result = dispatch(request, 24)
    return result


def dispatch(request, depth):
    if depth:
        return dispatch(request, depth - 1)
    return request.wait()


def worker_loop(queue):
    while True:
        job = queue.get(timeout=5)
        job.run()


def green_worker(pool):
    for item in pool.jobs():
        item.switch()


def hub_loop(hub):
    hub.loop.run()


async def poll_backend(client):
    reply = await client.fetch("/status")
    return reply


def warn(text):
    banner = "\x1b[31m==== Threads ====\x1b[0m\tcaf\u00e9 \u2028 \u202egnp.exe"
    return print(banner, text)


if __name__ == "__main__":
    main(sys.argv)
'''

WATCHER_FILE = "/opt/venv/lib/python3/site-packages/gmr/watcher.py"
WATCHER_SOURCE = '''\
def _run(watcher):
    while _serve_once(watcher):
        pass


def _serve_once(watcher):
    data = watcher.channel.wait(None)
    return data != b"q"
'''

# A plugin exec'd from a string: no file to read its lines from.
PLUGIN_FILE = "<string>"
PLUGIN_SOURCE = '''\
def plugin(job):
    return job.work()
'''

# A file name that begins a line of the report, and looks like a banner.
FORGED_FILE = "==== Green Threads ====.py"
FORGED_SOURCE = '''\
def forged():
    return None
'''

SOURCES = {
    SERVICE_FILE: SERVICE_SOURCE,
    WATCHER_FILE: WATCHER_SOURCE,
    PLUGIN_FILE: PLUGIN_SOURCE,
    FORGED_FILE: FORGED_SOURCE,
}
MODULES = {name: compile(source, name, "exec") for name, source in SOURCES.items()}


def code(filename: str, name: str) -> types.CodeType:
    """A top-level function's code object ("<module>": the module's own)."""
    module = MODULES[filename]
    if name == "<module>":
        return module
    (found,) = [const for const in module.co_consts
                if isinstance(const, types.CodeType) and const.co_name == name]
    return found


def line_of(filename: str, text: str) -> int:
    """The number of the one line of that file that holds text."""
    (number,) = [index for index, line in enumerate(SOURCES[filename].split("\n"), 1)
                 if text in line]
    return number


def at(filename: str, function: str, text: str) -> snapshot.Frame:
    """A frame of that function standing on the line that holds text: its
    first instruction there (offsets differ between versions; lines do not)."""
    where = code(filename, function)
    line = line_of(filename, text)
    for start, _end, number in where.co_lines():
        if number == line and resolve.line_of(where, start) == line:
            return snapshot.Frame(where, start)
    raise AssertionError(f"no instruction of {function} on line {line}")


def service(function: str, text: str) -> snapshot.Frame:
    return at(SERVICE_FILE, function, text)


# -- Hand-made stacks -----------------------------------------------------------

MAIN_STACK = (
    service("<module>", "main(sys.argv)"),
    service("main", "return serve_forever(server)"),
    service("serve_forever", "handle(server.accept())"),
    service("handle", "result = dispatch(request, 24)"),
    *[service("dispatch", "return dispatch(request, depth - 1)")] * 24,
    service("dispatch", "return request.wait()"),
)
WORKER_STACK = (
    service("worker_loop", "job.run()"),
    at(PLUGIN_FILE, "plugin", "return job.work()"),
)
HOSTILE_STACK = (
    service("warn", "banner = "),
    at(FORGED_FILE, "forged", "return None"),
)
WATCHER_STACK = (
    at(WATCHER_FILE, "_run", "while _serve_once(watcher):"),
    at(WATCHER_FILE, "_serve_once", "data = watcher.channel.wait(None)"),
)
HUB_STACK = (service("hub_loop", "hub.loop.run()"),)
GREEN_STACK = (
    service("green_worker", "item.switch()"),
    service("handle", "result = dispatch(request, 24)"),
    service("dispatch", "return request.wait()"),
)
POOL_STACK = (service("green_worker", "for item in pool.jobs():"),)

PID = 4242
CHILD_PID = 4243
MAIN_IDENT = 140_000_000_000_100

# ident, native id, name, main, daemon, frames; and the kernel's view of
# each: state letter, CPU seconds.
THREADS = [
    (MAIN_IDENT, PID, "MainThread", True, False, MAIN_STACK, "R", 12.5),
    (140_000_000_000_200, 4250, "worker-1", False, True, WORKER_STACK, "S", 0.75),
    (140_000_000_000_300, 4251, "worker-2", False, True, WORKER_STACK, "S", 0.5),
    (140_000_000_000_400, 4252, "worker\n\x1b[31m==== Threads ====\x1b[0m", False, False,
     HOSTILE_STACK, "D", 0.0),
    # gmr's watcher: a thread of its own that threading does not know.
    (140_000_000_000_500, 4253, None, False, None, WATCHER_STACK, "S", 0.02),
    # A thread of a C library: no Python frames, no native id known.
    (140_000_000_000_600, None, None, False, None, (), None, None),
]


class FakeGeventHubModule(types.ModuleType):
    """What gmr.greenlets looks for in sys.modules["gevent.hub"]: its Hub type."""

    class Hub:
        def __init__(self, thread_ident: int) -> None:
            self.thread_ident = thread_ident
            self.ident_registry = types.SimpleNamespace(_registry={})


HUB_MODULE = FakeGeventHubModule("gevent.hub")


class FakeGreenlet:
    """Shaped like gevent's Greenlet where gmr.greenlets reads it: a name of
    its own, an ident its hub's registry assigned, who spawned it from where."""

    minimal_ident = None  # the type's mark: gevent's kind of greenlet

    def __init__(self, parent: Any, ident: int | None = None, name: str | None = None,
                 spawner: object = None, spawning_stack: Any = None) -> None:
        if name is not None:
            self.name = name
        self.parent = parent
        if ident is not None:
            parent.ident_registry._registry[self] = (ident, None)
        self.spawning_greenlet = (lambda: spawner) if spawner is not None else None
        self.spawning_stack = spawning_stack


def spawning_stack(*frames: tuple[str, str]) -> Any:
    """gevent's record of where a greenlet was spawned: frame-like objects,
    innermost first, with f_code, f_lineno and f_back."""
    record = None
    for function, text in frames:  # outermost first
        record = types.SimpleNamespace(f_code=code(SERVICE_FILE, function),
                                       f_lineno=line_of(SERVICE_FILE, text), f_back=record)
    return record


MAIN_GREENLET_ID = 0x7F0000001000
HUB_ID = 0x7F0000002000
main_greenlet = object()
hub = HUB_MODULE.Hub(MAIN_IDENT)
spawned_here = spawning_stack(("<module>", "main(sys.argv)"),
                              ("main", "return serve_forever(server)"),
                              ("serve_forever", "handle(server.accept())"))
#: The fixed id() that stands for each spawner object (id() differs from run to run).
SPAWNER_IDS = {id(main_greenlet): MAIN_GREENLET_ID}


def greenlet_stacks() -> tuple[snapshot.GreenletStack, ...]:
    stack = snapshot.GreenletStack
    green = [
        stack(MAIN_GREENLET_ID, "greenlet.greenlet", "running", None, (), main_greenlet),
        stack(HUB_ID, "gevent.hub.Hub", "suspended", MAIN_GREENLET_ID, HUB_STACK, hub),
        stack(0x7F0000003000, "gevent.greenlet.Greenlet", "suspended", HUB_ID, GREEN_STACK,
              FakeGreenlet(hub, 1, "api-request", main_greenlet, spawned_here)),
        stack(0x7F0000004000, "gevent.greenlet.Greenlet", "suspended", HUB_ID, GREEN_STACK,
              FakeGreenlet(hub, 2, None, main_greenlet, spawned_here)),
        stack(0x7F0000005000, "gevent.greenlet.Greenlet", "not started", HUB_ID, (),
              FakeGreenlet(hub, None, "green\u2028one\x1b]0;title\x07")),
        stack(0x7F0000006000, "gevent.greenlet.Greenlet", "dead", HUB_ID, (),
              FakeGreenlet(hub, 6, "finished")),
        # A spawner gevent recorded no stack for.
        stack(0x7F0000007000, "gevent.greenlet.Greenlet", "suspended", HUB_ID, GREEN_STACK,
              FakeGreenlet(hub, 7, "no-stack", main_greenlet)),
    ]
    # Plain greenlets parked in one place, more than a group names.
    green += [stack(0x7F0000100000 + 0x1000 * index, "greenlet.greenlet", "suspended",
                    MAIN_GREENLET_ID, POOL_STACK, None) for index in range(22)]
    return tuple(green)


def hand_made(*, full: bool = True) -> snapshot.Snapshot:
    threads = tuple(snapshot.ThreadStack(ident=ident, native_id=native, name=name, is_main=main,
                                         frames=frames, daemon=daemon)
                    for ident, native, name, main, daemon, frames, _, _ in THREADS)
    if not full:
        return snapshot.Snapshot(
            captured_at=1_700_000_000.0, pid=PID, trigger="api", coalesced=1,
            implementation="compiled", pause_ns=42_000, heap_objects=0,
            threads=threads[-1:], greenlets=())
    return snapshot.Snapshot(
        captured_at=1_700_000_000.25, pid=PID, trigger="signal", coalesced=3,
        implementation="pure", pause_ns=1_234_000, heap_objects=1_000_000,
        holds=5, held_ns=4_321_000, heap_scanned=False,
        threads=threads, greenlets=greenlet_stacks(),
        # A pool of two idle workers (their stacks run no work item), a
        # hostile thread-name prefix, and a worker the capture did not see.
        pools=(pools.Pool(kind="concurrent.futures.ThreadPoolExecutor", id=0x7F00000B0000,
                          name="rpc\n==== Green Threads ====", max_workers=4, queued=7,
                          workers=(140000000000200, 140000000000300, 140000000000999)),
               # The executor of an oslo.messaging RPC server (a hostile host
               # name), its one worker not captured.
               pools.Pool(kind="futurist.ThreadPoolExecutor", id=0x7F00000B1000, name=None,
                          max_workers=64, queued=0, workers=(140000000000998,),
                          serves=pools.MessagingServer(
                              "oslo_messaging.rpc.server.RPCServer", "rpc",
                              (pools.MessagingTarget("compute", "node-1\n==== Threads ====",
                                                     None),),
                              ("nova.compute.manager.ComputeManager",
                               "oslo_messaging.rpc.dispatcher.PingEndpoint")))),
        # worker-1 and the hostile-named thread hold the RLock the other
        # waits for (a deadlock); worker-2 waits on an Event.
        waits={140000000000200: waits.Wait("_thread.RLock", 0x7F00000C0000, True,
                                           140000000000400),
               140000000000400: waits.Wait("_thread.RLock", 0x7F00000C1000, True,
                                           140000000000200),
               140000000000300: waits.Wait("threading.Event", 0x7F00000C2000, False, None)},
        # A signal that came while the main thread's gevent hub and a loop of
        # the hostile-named thread were stalled (gmr.stall).
        stall=snapshot.StallFacts(2.0, (
            snapshot.StalledLoop("gevent", "gevent.hub.Hub", HUB_ID, MAIN_IDENT, 2.25, True),
            snapshot.StalledLoop("asyncio", "asyncio.unix_events._UnixSelectorEventLoop",
                                 0x7F00000A0000, 140_000_000_000_400, 7.5, False),
        ), unreported=1),
        fallback="pure-Python walker, trigger, files on CPython 3.12.1 (GMR_NO_EXTENSIONS is "
                 "set): no report while the main thread is stuck in C, no watchdog; a longer "
                 "pause, frame objects made for every frame read; a report that lets the GIL "
                 "go at every read")


TASKS = (
    tasks.TaskStack("Task-1", "running", 0x7F00000A0000,
                    "<_UnixSelectorEventLoop running=True closed=False debug=False>",
                    (service("poll_backend", 'reply = await client.fetch("/status")'),)),
    tasks.TaskStack("poll\x1b[2Jer", "pending", 0x7F00000A0000,
                    "<_UnixSelectorEventLoop running=True closed=False debug=False>",
                    (service("poll_backend", "return reply"),)),
)

# -- Fixed facts of the process ---------------------------------------------------


def stat_line(pid: int, command: str, state: str, ppid: int, cpu: float) -> str:
    """A /proc stat line: the command may hold spaces and parentheses."""
    ticks = round(cpu * facts._TICKS)
    after = [state, str(ppid), *["0"] * 9, str(ticks), "0", *["0"] * 6, "1000"]
    return f"{pid} ({command}) {' '.join(after)} 0 0\n"


def status_text(uid: int) -> str:
    ids = "\t".join([str(uid)] * 4)
    return f"Name:\tpython3\nState:\tS (sleeping)\nUid:\t{ids}\nGid:\t{ids}\nThreads:\t6\n"


PROC = {
    f"/proc/{PID}/stat": stat_line(PID, "nova-api (main)", "S", 1, 12.5),
    f"/proc/{PID}/status": status_text(162),
    f"/proc/{PID}/cmdline": "\0".join([
        "/usr/bin/python3", SERVICE_FILE, "--config-file", "/etc/app/app.conf",
        "--db-password=hunter2", "--name", "api\n\x1b[2J==== Processes ====",
    ]) + "\0",
    f"/proc/{CHILD_PID}/stat": stat_line(CHILD_PID, "python3", "Z", PID, 0.0),
    f"/proc/{CHILD_PID}/status": status_text(0),
    f"/proc/{CHILD_PID}/cmdline": "\0".join(["/usr/bin/python3", "-c", "worker()"]) + "\0",
}
USERS = {162: "nova", 0: "root"}

PROCESS_FACTS: dict[str, Any] = {
    "python": "CPython 3.12.1",
    "green hub": "gevent 26.9.0 (gevent.libev.corecext)",
    "uptime seconds": 3600.5,
    "rss bytes": 104_857_600,
    "peak rss bytes": 125_829_120,
    "cpu user seconds": 10.25,
    "cpu system seconds": 2.25,
    "open fds": 17,
    "fd limit": 1024,
    "threads": 6,
    "rlimits": {name: "1024 / 4096" if name == "nofile" else "unlimited / unlimited"
                for name in ("nofile", "nproc", "as", "data", "stack", "core", "cpu",
                             "fsize", "memlock")},
    "cgroup memory": {"limit": "unlimited", "usage": 209_715_200},
    "gc": {
        "enabled": True,
        "counts": "12 / 3 / 1",
        "thresholds": "700 / 10 / 10",
        "collections": "100 / 9 / 1",
        "collected": "2000 / 300 / 40",
        "uncollectable": "0 / 0 / 0",
    },
}


def fake_read_texts(paths: Iterable[str], own: bool = False) -> dict[str, str | None]:
    """facts.read_texts over a fixed /proc: this process, one child, and a
    stat file for each hand-made thread (at whatever pid facts asks under)."""
    kernel = {native: (letter, cpu) for _, native, _, _, _, _, letter, cpu in THREADS
              if native is not None and letter is not None and cpu is not None}
    out: dict[str, str | None] = {}
    for path in paths:
        task = re.fullmatch(r"/proc/\d+/task/(\d+)/stat", path)
        if task is not None and int(task.group(1)) in kernel:
            letter, cpu = kernel[int(task.group(1))]
            out[path] = stat_line(int(task.group(1)), "python3", letter, 1, cpu)
        else:
            out[path] = PROC.get(path)
    return out


def fake_read_files(paths: list[str], *args: Any, **kwargs: Any) -> list[bytes | None]:
    """The file reader's answer for the fixed sources (None: no such file)."""
    return [SOURCES[path].encode() if path in SOURCES and not path.startswith("<") else None
            for path in paths]


# -- Configuration and registered sections ------------------------------------------


def configuration() -> cfg.ConfigOpts:
    """A real oslo.config configuration: options of several kinds and groups,
    a secret one (quoted by another), secrets that cannot be read, a bad
    value (from the environment, OS_DEFAULT__WORKERS), a forged banner."""
    conf = cfg.ConfigOpts()
    conf.register_opts([
        cfg.StrOpt("host", default="api-1.example"),
        cfg.IntOpt("workers", default=4),
        cfg.ListOpt("enabled_apis", default=["osapi_compute", "metadata"]),
        cfg.BoolOpt("debug", default=False),
        cfg.StrOpt("banner", default="==== Configuration ====\n\x1b[2Jforged"),
    ])
    conf.register_opts([
        cfg.StrOpt("password", secret=True, default="s3cr3t-pw"),
        cfg.StrOpt("connection", default="mysql+pymysql://nova:$database.password@db/nova"),
        cfg.StrOpt("slave_connection", default="mysql+pymysql://ro:hunter2@replica/nova"),
        cfg.IntOpt("max_pool_size", default=5),
        cfg.DictOpt("engine_options", default={"pool_recycle": "3600", "echo": "false"}),
    ], group="database")
    conf.register_opts([
        cfg.StrOpt("transport_url", secret=True, default="rabbit://nova:$rabbit_pw@mq:5672/"),
        cfg.StrOpt("notify_url", default="rabbit://$no_such_option@mq/"),
    ], group="oslo_messaging")
    conf([], project="nova", prog="nova-api", default_config_files=[],
         default_config_dirs=[])
    return conf


class OsloModel:
    """Any object: its str(), lines kept, each escaped."""

    def __str__(self) -> str:
        return "Model(\n  name='pool',\n==== Fake Banner ====\n  size=3)"


def broken() -> Any:
    raise RuntimeError("cannot read the pool: password=hunter2\n==== forged ====")


def registered(slow: threading.Event | None) -> list[tuple[str, Callable[[], Any]]]:
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("A String", lambda: "first line\n==== Fake Banner ====\n\x1b[2Jcleared\ttab\u2028end"),
        ("A Mapping", lambda: {
            "hosts": ["api-1", "api-2"],
            "limits": {"cpu": 2, "memory": "1 GiB", "ratio": 0.5},
            "=key": "=value",
            "db": "mysql://nova:hunter2@db/nova",
            "api_token": "abc123",
            "empty": [],
            "none": None,
            "flag": True,
        }),
        ("A Sequence", lambda: ["one", 2, ["nested", "list"], {"k": "v"},
                                "==== looks like a banner ===="]),
        ("An Object", OsloModel),
        ("A Broken One", broken),
        ("Hostile\n==== Title ====\x1b[0m", lambda: "its value"),
    ]
    if slow is not None:
        sections.append(("A Slow One", lambda: slow.wait(30)))
    return sections


class NovaVersion:
    """A Nova-style version object."""

    def vendor_string(self) -> str:
        return "OpenStack Foundation"

    def product_string(self) -> str:
        return "OpenStack Compute"

    def version_string_with_package(self) -> str:
        return "27.1.0-0ubuntu1"


# -- The fixed world ---------------------------------------------------------------------


class FixedPidOs:
    """os as gmr.report sees it, with the hand-made process's pid and host."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def getpid() -> int:
        return PID

    @staticmethod
    def uname() -> os.uname_result:
        return os.uname_result(("Linux", "compute-1.example.org", "6.1.0", "#1", "x86_64"))


@pytest.fixture
def fixed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every fact of the living process that report.build() reads, fixed."""
    # Source lines: through the file reader gmr.resolve uses; "<string>"
    # (no file) through linecache, which holds its lines (mtime None: never
    # checked).
    monkeypatch.setattr(resolve, "files", types.SimpleNamespace(read_files=fake_read_files))
    for name, source in SOURCES.items():
        lines = [line + "\n" for line in source.split("\n")]
        monkeypatch.setitem(linecache.cache, name, (len(source), None, lines, name))
    # /proc, the user database and the process's own resource facts.
    monkeypatch.setattr(facts, "read_texts", fake_read_texts)
    monkeypatch.setattr(facts, "descendants", lambda pid: [CHILD_PID])
    monkeypatch.setattr(facts, "user_name", USERS.get)
    monkeypatch.setattr(facts, "process_facts", lambda *args: PROCESS_FACTS)
    # The pid report.processes_data asks os for (gmr.report's os only).
    monkeypatch.setattr(report, "os", FixedPidOs())
    report._host.cache_clear()  # read again, from FixedPidOs
    # The program in the header.
    monkeypatch.setattr(sys, "argv", [SERVICE_FILE, "--config-file", "/etc/app/app.conf",
                                      "--os-password", "hunter2"])
    # gevent's hub type, and the id() of a spawner (an address: new each run).
    monkeypatch.setitem(sys.modules, "gevent.hub", HUB_MODULE)
    real_identity = greenlets.identity

    def identity(green: object, tables: dict[int, Any] | None = None
                 ) -> greenlets.GreenletIdentity:
        who = real_identity(green, tables)
        if who.spawned_by is not None:
            who = who._replace(spawned_by=SPAWNER_IDS[who.spawned_by])
        return who

    monkeypatch.setattr(greenlets, "identity", identity)
    monkeypatch.setattr(tasks, "capture_tasks", lambda: TASKS)
    # Environment: allowed variables, one a credential; a bad option value.
    monkeypatch.setenv("GMR_GOLDEN_REGION", "region-one\n==== forged ====")
    monkeypatch.setenv("GMR_GOLDEN_DB_PASSWORD", "hunter2")
    monkeypatch.setenv("OS_DEFAULT__WORKERS", "many")
    yield
    report._host.cache_clear()  # the real host again for later tests


def frozen(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """A walker that does not see what gc.freeze() froze, and that count."""
    monkeypatch.setattr(report, "walker", types.SimpleNamespace(SEES_FROZEN=count == 0))
    monkeypatch.setattr(report, "gc", types.SimpleNamespace(get_freeze_count=lambda: count))


ALLOWED = ("GMR_GOLDEN_REGION", "GMR_GOLDEN_DB_PASSWORD", "GMR_GOLDEN_UNSET")


def full_report(monkeypatch: pytest.MonkeyPatch, grouped: bool) -> report.Report:
    """Every section: threads, greenlets in every state, tasks, processes,
    configuration and registered ones; deep stacks cut at 8 frames; a pure
    core, coalesced triggers, a displaced handler, frozen objects."""
    frozen(monkeypatch, 3)
    slow = None if grouped else threading.Event()
    options = report.Options(group_stacks=grouped, max_stack_depth=8,
                             environment_allowlist=ALLOWED, section_timeout=1.0)
    try:
        return report.build(hand_made(), NovaVersion(), configuration(), registered(slow),
                            options, displaced=[12])
    finally:
        if slow is not None:
            slow.set()


def minimal_report(monkeypatch: pytest.MonkeyPatch) -> report.Report:
    """The least a report holds: one thread without frames, no greenlet, no
    asyncio, no configuration, no version, nothing registered."""
    frozen(monkeypatch, 0)
    monkeypatch.delitem(sys.modules, "asyncio")
    return report.build(hand_made(full=False), None, None, [], report.Options())


# -- Golden files ------------------------------------------------------------------------


def check_golden(name: str, actual: str) -> None:
    """actual against tests/golden/<name>; GMR_UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: GMR_UPDATE_GOLDEN=1 python -m pytest "
                    f"tests/unit/{Path(__file__).name} writes it", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            f"tests/golden/{name} (expected)", f"{name} (actual)"))
        pytest.fail(f"the report differs from tests/golden/{name} (if that is meant: "
                    f"GMR_UPDATE_GOLDEN=1 python -m pytest tests/unit/{Path(__file__).name}, "
                    f"and review the diff of the golden file):\n{diff}", pytrace=False)


@pytest.mark.usefixtures("fixed")
@pytest.mark.parametrize("grouped", [False, True], ids=["one-by-one", "grouped"])
def test_full_text_report(monkeypatch: pytest.MonkeyPatch, grouped: bool, core: Any) -> None:
    """The same text, byte for byte, from both twins of the files unit (the
    compiled one assembles the greenlet listings from columns)."""
    monkeypatch.setattr(render, "files", core)
    text = render.render(full_report(monkeypatch, grouped), "text")
    check_golden(f"report_{'grouped' if grouped else 'full'}.txt", text)


@pytest.mark.usefixtures("fixed")
def test_minimal_text_report(monkeypatch: pytest.MonkeyPatch) -> None:
    check_golden("report_minimal.txt", render.render(minimal_report(monkeypatch), "text"))


@pytest.mark.usefixtures("fixed")
@pytest.mark.parametrize("grouped", [False, True], ids=["one-by-one", "grouped"])
def test_full_json_report(monkeypatch: pytest.MonkeyPatch, grouped: bool, core: Any) -> None:
    """The same report as JSON (format = json), valid against the schema;
    json-compact is the same document on one line. Byte for byte the same
    from both twins of the files unit (the compiled one assembles the
    greenlet records from columns)."""
    monkeypatch.setattr(render, "files", core)
    model = full_report(monkeypatch, grouped)
    pretty = render.render(model, "json")
    check_golden(f"report_{'grouped' if grouped else 'full'}.json", pretty)
    document = validate_report(pretty)
    compact = render.render(model, "json-compact")
    assert compact.count("\n") == 1 and compact.isascii()
    assert json.loads(compact) == document


@pytest.mark.usefixtures("fixed")
def test_minimal_json_report(monkeypatch: pytest.MonkeyPatch) -> None:
    pretty = render.render(minimal_report(monkeypatch), "json")
    check_golden("report_minimal.json", pretty)
    validate_report(pretty)


def test_fixed_facts_have_the_shape_of_real_ones() -> None:
    """The fixed process facts name every fact the real reader gives (a fact
    added to gmr.facts must be added here, and to the golden files)."""
    real = facts.process_facts()
    assert PROCESS_FACTS.keys() == real.keys()
    for key, value in real.items():
        if isinstance(value, dict):
            assert PROCESS_FACTS[key].keys() == value.keys(), key
    (entry,) = facts.process_entries([os.getpid()])
    assert set(entry) == {"pid", "ppid", "user", "uids", "gids", "cmdline", "state"}
