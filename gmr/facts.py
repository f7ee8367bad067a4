"""Facts about threads and the process, read after the capture (never in
its pause): the kernel's view of each thread, resource use and limits, the
GC, the interpreter and the green hub in use. Linux /proc where it has them,
psutil and the resource module otherwise; a fact that cannot be had is
None, never an error."""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

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


def thread_facts(native_id: int | None, pid: int | None = None) -> ThreadFacts:
    """State and CPU time of a thread from /proc/<pid>/task/<tid>/stat."""
    if not native_id:
        return ThreadFacts(None, None)
    try:
        with open(f"/proc/{pid or os.getpid()}/task/{native_id}/stat", "rb") as stat:
            raw = stat.read().decode(errors="replace")
    except OSError:
        return ThreadFacts(None, None)
    # The command name may hold spaces and parentheses: split after the last ")".
    fields = raw[raw.rfind(")") + 2:].split()
    try:
        state = STATES.get(fields[0], fields[0])
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    except (IndexError, ValueError):
        return ThreadFacts(None, None)
    return ThreadFacts(state, cpu)


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _proc_status() -> dict[str, str]:
    text = _read("/proc/self/status") or ""
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _kib(value: str | None) -> int | None:
    if not value or not value.endswith("kB"):
        return None
    return int(value.split()[0]) * 1024


def cgroup_memory() -> dict[str, int | str | None]:
    """The memory limit and usage of this process's cgroup (v2, else v1)."""
    line = (_read("/proc/self/cgroup") or "").splitlines()
    v2 = next((entry.split("::", 1)[1] for entry in line if entry.startswith("0::")), None)
    if v2 is not None:
        base = "/sys/fs/cgroup" + (v2 if v2 != "/" else "")
        limit = _read(f"{base}/memory.max")
        usage = _read(f"{base}/memory.current")
        if limit is not None or usage is not None:
            return {
                "limit": "unlimited" if limit == "max" else int(limit) if limit else None,
                "usage": int(usage) if usage else None,
            }
    limit = _read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    usage = _read("/sys/fs/cgroup/memory/memory.usage_in_bytes")
    return {
        "limit": None if not limit else "unlimited" if int(limit) >= _NO_LIMIT else int(limit),
        "usage": int(usage) if usage else None,
    }


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


def green_hub() -> str | None:
    """The green hub in use, if eventlet or gevent has patched this process."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        hub = sys.modules.get("eventlet.hubs")
        name = type(hub.get_hub()).__module__ if hub is not None else "?"
        return f"eventlet ({name})"
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        gevent = sys.modules["gevent"]
        return f"gevent {gevent.__version__} ({gevent.config.loop.__module__})"
    return None


def _per_generation(values: Any) -> str:
    """Generation 0, 1, 2 on one line."""
    return " / ".join(str(value) for value in values)


# cgroup v1 says "no limit" with a huge number near 2**63.
_NO_LIMIT = 1 << 60


def process_facts(started_at: float | None = None) -> dict[str, Any]:
    """Uptime, memory, CPU, file descriptors against their limit, rlimits,
    cgroup memory, GC counts and thresholds, the interpreter and the hub."""
    status = _proc_status()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        fds: int | None = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = None
    uptime = None
    stat = _read("/proc/self/stat")
    uptime_text = _read("/proc/uptime")
    if stat and uptime_text:
        start_ticks = int(stat[stat.rfind(")") + 2:].split()[19])
        uptime = round(float(uptime_text.split()[0]) - start_ticks / _TICKS, 1)
    elif started_at is not None:
        uptime = round(time.time() - started_at, 1)
    soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    gc_stats = gc.get_stats()
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
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
        "cgroup memory": cgroup_memory(),
        "gc": {
            "enabled": gc.isenabled(),
            "counts": _per_generation(gc.get_count()),
            "thresholds": _per_generation(gc.get_threshold()),
            "collections": _per_generation(entry["collections"] for entry in gc_stats),
            "collected": _per_generation(entry["collected"] for entry in gc_stats),
            "uncollectable": _per_generation(entry["uncollectable"] for entry in gc_stats),
        },
    }
