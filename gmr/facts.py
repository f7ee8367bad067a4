"""Facts about threads and the process, read after the capture (never in
its pause): the kernel's view of each thread, resource use and limits, the
GC, the interpreter and the green hub in use. Linux /proc where it has them,
psutil and the resource module otherwise; a fact that cannot be had is
None, never an error."""

from __future__ import annotations

import gc
import os
import platform
import pwd
import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gmr import redact
from gmr._impl import files

#: The service's own GC state (enabled, thresholds) while a report pauses
#: automatic collection (gmr.watcher._Hurry): shown instead of the pause.
SERVICE_GC: tuple[bool, tuple[int, ...]] | None = None

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: The kernel's one-letter thread states, as ps and top show them.
STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk wait",
    "Z": "zombie",
    "T": "stopped",
    "t": "tracing stop",
    "X": "dead",
    "I": "idle",
    "P": "parked",
}


@dataclass(frozen=True)
class ThreadFacts:
    """The kernel's view of one thread."""

    #: "running", "sleeping", "disk wait", ... or None where unknown.
    state: str | None
    #: CPU time the thread has used (user + system), in seconds.
    cpu_seconds: float | None


#: What this kernel's /proc keeps, asked once, at import: in a report, an
#: os.path.exists would let the GIL go, and wait to get it back from a busy
#: thread. (The kernel is the same after a fork.)
_PROC_STAT = os.path.exists("/proc/self/stat")
_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


#: Files the watcher read as it woke for the report being made, before it
#: took the GIL back (read_ahead): path -> bytes (None: unreadable). Each is
#: used once, by read_texts, instead of a read that would let the GIL go.
READ_AHEAD: dict[str, bytes | None] = {}


def read_ahead() -> list[str]:
    """The files the watcher reads as it wakes for a report, without the GIL
    and before it takes it back: this process's command line (never read
    with the GIL held, see process_entries), which would otherwise cost the
    report a wait for the GIL behind the busy threads."""
    return [f"/proc/{os.getpid()}/cmdline"] if _PROC_STAT else []


def read_texts(paths: Iterable[str], own: bool = False) -> dict[str, str | None]:
    """Each file's text (None where it cannot be read), read in one batch:
    the compiled core lets the GIL go once for the lot, where Python's reads
    let it go, and wait to get it back from a busy thread, once per call.
    own: files the kernel answers at once, about this process and its
    tasks (not another process's command line, which waits for that
    process's memory map): the compiled core keeps the GIL for them.
    A file the watcher read as it woke (READ_AHEAD) is not read again."""
    unique = list(dict.fromkeys(paths))
    ready = {path: READ_AHEAD.pop(path) for path in unique if path in READ_AHEAD}
    wanted = [path for path in unique if path not in ready]
    ready.update(zip(wanted, files.read_files(wanted, keep_gil=own), strict=True))
    return {path: None if (data := ready[path]) is None else data.decode(errors="replace")
            for path in unique}


def _after_command(stat: str) -> list[str]:
    # The command name may hold spaces and parentheses: split after the last ")".
    return stat[stat.rfind(")") + 2:].split()


def _thread_facts_of(stat: str | None) -> ThreadFacts:
    if not stat:
        return ThreadFacts(None, None)
    fields = _after_command(stat)
    try:
        state = STATES.get(fields[0], fields[0])
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return ThreadFacts(None, None)
    return ThreadFacts(state, cpu)


def threads_facts(native_ids: Iterable[int | None],
                  pid: int | None = None) -> dict[int, ThreadFacts]:
    """State and CPU time of each thread, from /proc/<pid>/task/<tid>/stat."""
    pid = pid or os.getpid()
    ids = [native_id for native_id in native_ids if native_id]
    texts = read_texts((f"/proc/{pid}/task/{native_id}/stat" for native_id in ids), own=True)
    return {native_id: _thread_facts_of(texts[f"/proc/{pid}/task/{native_id}/stat"])
            for native_id in ids}


def thread_facts(native_id: int | None, pid: int | None = None) -> ThreadFacts:
    """One thread's state and CPU time."""
    if not native_id:
        return ThreadFacts(None, None)
    return threads_facts([native_id], pid)[native_id]


def descendants(pid: int, generations: int = -1) -> list[int]:
    """The process's children, theirs, and so on, parents first (at most
    `generations` deep; -1: all). The kernel lists each thread's children
    (/proc/<pid>/task/<tid>/children): a few small reads, where scanning all
    of /proc costs one per process on the host. psutil's scan where the
    kernel keeps no such list."""
    if not _PROC_CHILDREN:
        import psutil  # noqa: PLC0415 (where the kernel keeps no such list)

        try:
            process = psutil.Process(pid)
            if generations == 1:
                return [child.pid for child in process.children()]
            return [child.pid for child in process.children(recursive=True)]
        except psutil.Error:
            return []
    if pid == os.getpid() and not files.may_have_children():
        return []  # without a read of each thread's list (one per thread: 1 ms at 100)
    found: list[int] = []
    parents = [pid]
    while parents and generations != 0:  # one generation at a time, each in one batch
        generations -= 1
        paths = []
        listed = files.list_dirs([f"/proc/{parent}/task" for parent in parents])
        for parent, tasks in zip(parents, listed, strict=True):
            # None: it ended while we looked
            paths += [f"/proc/{parent}/task/{task}/children" for task in tasks or ()]
        parents = []
        for text in read_texts(paths, own=True).values():  # lists of pids
            for child in map(int, (text or "").split()):
                if child not in found:
                    found.append(child)
                    parents.append(child)
    return found


def user_name(uid: int) -> str | None:
    """The user's name, looked up once per uid (the first look-up opens the
    user database)."""
    name = _user_names.get(uid)
    if name is None:
        try:
            name = _user_names[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            return None
    return name


_user_names: dict[int, str] = {}


def process_entries(pids: list[int]) -> list[dict[str, Any]]:
    """pid, ppid, user, uids, gids, command line (credentials masked) and
    state of each process still there, from /proc in one batch; psutil where
    there is no /proc."""
    if not _PROC_STAT:
        return [entry for entry in map(_psutil_entry, pids) if entry is not None]
    names = ("stat", "status", "cmdline")
    me = os.getpid()
    # A command line, even this process's own, is read from the process's
    # memory under its memory-map lock, which a thread in mmap() or a page
    # fault can hold for long: never read with the GIL held.
    texts = read_texts((f"/proc/{me}/{name}" for name in names[:2] if me in pids), own=True)
    texts.update(read_texts(f"/proc/{pid}/{name}" for pid in pids for name in names
                            if pid != me or name == "cmdline"))
    out = []
    for pid in pids:
        stat, status, cmdline = (texts[f"/proc/{pid}/{name}"] for name in names)
        if not stat or status is None or cmdline is None:
            continue  # ended while we looked
        fields = _after_command(stat)
        lines = status_fields(status)
        uids = [int(value) for value in lines.get("Uid", "").split()[:3]] or None
        gids = [int(value) for value in lines.get("Gid", "").split()[:3]] or None
        out.append({
            "pid": pid,
            "ppid": int(fields[1]),
            "user": user_name(uids[0]) if uids else None,
            "uids": uids,
            "gids": gids,
            "cmdline": redact.redact_argv(cmdline.rstrip("\0").split("\0") if cmdline else []),
            "state": STATES.get(fields[0], fields[0]),
        })
    return out


def _psutil_entry(pid: int) -> dict[str, Any] | None:
    import psutil

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            try:
                uids, gids, user = process.uids(), process.gids(), process.username()
            except (psutil.Error, KeyError):
                uids = gids = None
                user = None
            return {
                "pid": pid,
                "ppid": process.ppid(),
                "user": user,
                "uids": list(uids) if uids else None,
                "gids": list(gids) if gids else None,
                "cmdline": redact.redact_argv(process.cmdline()),
                "state": process.status(),
            }
    except psutil.Error:
        return None


def status_fields(text: str | None) -> dict[str, str]:
    """The "Name:<tab>value" lines of a /proc status file, as a mapping."""
    return dict(line.split(":\t", 1) for line in (text or "").splitlines() if ":\t" in line)


def _kib(value: str | None) -> int | None:
    if not value or not value.endswith("kB"):
        return None
    return int(value.split()[0]) * 1024


_CGROUP_V1 = ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
              "/sys/fs/cgroup/memory/memory.usage_in_bytes")


def _cgroup_v2_files(cgroup: str | None) -> tuple[str, str] | None:
    """memory.max and memory.current of this process's cgroup v2, if it has one."""
    entry = next((line.split("::", 1)[1] for line in (cgroup or "").splitlines()
                  if line.startswith("0::")), None)
    if entry is None:
        return None
    base = "/sys/fs/cgroup" + (entry.strip() if entry.strip() != "/" else "")
    return f"{base}/memory.max", f"{base}/memory.current"


def cgroup_memory(cgroup: str | None = None) -> dict[str, int | str | None]:
    """The memory limit and usage of this process's cgroup (v2, else v1);
    cgroup is /proc/self/cgroup's text, when read already."""
    if cgroup is None:
        cgroup = read_texts(["/proc/self/cgroup"], own=True)["/proc/self/cgroup"]
    v2 = _cgroup_v2_files(cgroup)
    texts = read_texts([*(v2 or ()), *_CGROUP_V1], own=True)
    if v2 is not None:
        limit, usage = (_stripped(texts[path]) for path in v2)
        if limit is not None or usage is not None:
            return {
                "limit": "unlimited" if limit == "max" else int(limit) if limit else None,
                "usage": int(usage) if usage else None,
            }
    limit, usage = (_stripped(texts[path]) for path in _CGROUP_V1)
    return {
        "limit": None if not limit else "unlimited" if int(limit) >= _NO_LIMIT else int(limit),
        "usage": int(usage) if usage else None,
    }


def _stripped(text: str | None) -> str | None:
    return text.strip() if text is not None else None


_LIMITS = ["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK",
           "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_MEMLOCK"]


def rlimits() -> dict[str, tuple[int | str, int | str]]:
    """(soft, hard) of each resource limit, "unlimited" for RLIM_INFINITY."""
    out: dict[str, tuple[int | str, int | str]] = {}
    for name in _LIMITS:
        if hasattr(resource, name):
            soft, hard = resource.getrlimit(getattr(resource, name))
            out[name[len("RLIMIT_"):].lower()] = tuple(  # type: ignore[assignment]
                "unlimited" if value == resource.RLIM_INFINITY else value for value in (soft, hard)
            )
    return out


#: eventlet's thread-local attributes (``hub``, ``Hub``) as the thread that
#: started gmr's watcher sees them: its hub is the service's. The watcher
#: reads them there, since eventlet.hubs.get_hub() in the watcher would
#: make a hub of the watcher's own (an epoll descriptor, a greenlet).
_eventlet_locals: dict[str, Any] = {}


def remember_green_hub() -> None:
    """Keep the calling thread's eventlet thread-locals (its own dict: a hub
    it makes later shows up there too). Called where gmr is started."""
    global _eventlet_locals
    local = getattr(sys.modules.get("eventlet.hubs"), "_threadlocal", None)
    try:
        _eventlet_locals = local.__dict__ if local is not None else {}
    except AttributeError:
        _eventlet_locals = {}


def green_hub() -> str | None:
    """The green hub in use, if eventlet or gevent has patched this process."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        hub = _eventlet_locals.get("hub")
        kind = type(hub) if hub is not None else _eventlet_locals.get("Hub")
        return f"eventlet ({getattr(kind, '__module__', None) or 'no hub yet'})"
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        gevent = sys.modules["gevent"]
        # The loop gevent chose, if it has chosen: reading config.loop would
        # make it choose, an import (from the watcher's thread, whose
        # import lock would make it a greenlet of its own under gevent).
        setting = getattr(getattr(gevent, "config", None), "settings", {}).get("loop")
        loop = vars(setting).get("value") if hasattr(setting, "__dict__") else None
        return f"gevent {gevent.__version__} ({getattr(loop, '__module__', None) or 'no loop yet'})"
    return None


def _per_generation(values: Any) -> str:
    """Generation 0, 1, 2 on one line."""
    return " / ".join(str(value) for value in values)


#: This interpreter (platform parses sys.version for it).
_PYTHON = f"{platform.python_implementation()} {platform.python_version()}"

# cgroup v1 says "no limit" with a huge number near 2**63.
_NO_LIMIT = 1 << 60


def process_facts(started_at: float | None = None) -> dict[str, Any]:
    """Uptime, memory, CPU, file descriptors against their limit, rlimits,
    cgroup memory, GC counts and thresholds, the interpreter and the hub."""
    texts = read_texts(["/proc/self/status", "/proc/self/stat", "/proc/uptime",
                        "/proc/self/cgroup"], own=True)
    status = status_fields(texts["/proc/self/status"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    fd_names = files.list_dirs(["/proc/self/fd"])[0]
    fds = len(fd_names) - 1 if fd_names is not None else None  # less the one listing them
    uptime = None
    stat = texts["/proc/self/stat"]
    uptime_text = texts["/proc/uptime"]
    if stat and uptime_text:
        start_ticks = int(_after_command(stat)[19])
        uptime = round(float(uptime_text.split()[0]) - start_ticks / _TICKS, 1)
    elif started_at is not None:
        uptime = round(time.time() - started_at, 1)
    soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    gc_stats = gc.get_stats()
    gc_enabled, gc_thresholds = SERVICE_GC or (gc.isenabled(), gc.get_threshold())
    return {
        "python": _PYTHON,
        "green hub": green_hub() or "none",
        "uptime seconds": uptime,
        "rss bytes": _kib(status.get("VmRSS")),
        "peak rss bytes": _kib(status.get("VmHWM")) or usage.ru_maxrss * 1024,
        "cpu user seconds": round(usage.ru_utime, 3),
        "cpu system seconds": round(usage.ru_stime, 3),
        "open fds": fds,
        "fd limit": "unlimited" if soft_nofile == resource.RLIM_INFINITY else soft_nofile,
        "threads": int(status["Threads"]) if "Threads" in status else None,
        "rlimits": {name: f"{soft} / {hard}" for name, (soft, hard) in rlimits().items()},
        "cgroup memory": cgroup_memory(texts["/proc/self/cgroup"] or ""),
        "gc": {
            "enabled": gc_enabled,
            "counts": _per_generation(gc.get_count()),
            "thresholds": _per_generation(gc_thresholds),
            "collections": _per_generation(entry["collections"] for entry in gc_stats),
            "collected": _per_generation(entry["collected"] for entry in gc_stats),
            "uncollectable": _per_generation(entry["uncollectable"] for entry in gc_stats),
        },
    }
