"""The report model (gmr.model), built from a snapshot after the capture:
one ordered list of sections, the threads, greenlets and tasks as typed
records pointing into one table of distinct stacks, the other sections as
plain data; both renderers read it (text in the oslo.reports layout, and
JSON).

Section order: Package, Threads, Green Threads, Processes, Configuration,
then the registered sections. A section whose builder fails says so in one
line inside itself; the rest of the report is whole.
"""

from __future__ import annotations

import datetime
import functools
import gc
import os
import sys
import time
from array import array
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from types import ModuleType
from typing import Any

from gmr import _originals, facts, greenlets, grouping, pools, redact, snapshot, tasks, waits
from gmr import opts as gmr_opts
from gmr._impl import trigger, walker
from gmr.model import (
    DeadlockLink,
    DeadlockRecord,
    GreenletRecord,
    GreenletRecords,
    Group,
    PoolRecord,
    PoolWorker,
    Report,
    Section,
    StackTableBuilder,
    TaskRecord,
    ThreadRecord,
)

#: The JSON schema version of the report (header.reportVersion).
REPORT_VERSION = 1

#: Report and Section are gmr.model's, named here too.
__all__ = ["REPORT_VERSION", "Options", "Report", "Section", "build"]


@dataclass(frozen=True, slots=True)
class Options:
    """How to build a report (from [oslo_reports] and the API)."""

    group_stacks: bool = False
    max_stack_depth: int = 0
    environment_allowlist: tuple[str, ...] = ()
    #: Seconds a registered section may take ([oslo_reports] section_timeout).
    section_timeout: float = 5.0


# -- Package -------------------------------------------------------------------


def package_data(version: Any) -> dict[str, str | None]:
    """What a version object knows: a Nova-style object or module
    (vendor_string, product_string, version_string_with_package), a pbr
    VersionInfo, a module holding one as version_info (aodh's, heat's
    version.py), a str, or None. A method that raises is that field's
    "<name() failed: ...>"; the others still show."""
    if version is None:
        return {"product": None, "vendor": None, "version": None}
    if isinstance(version, str):
        return {"product": None, "vendor": None, "version": _text(version)}

    def first(*names: str) -> str | None:
        """The first of these methods that gives a non-empty text; else why
        the first one failed; None when none gives one."""
        failed = None
        for name in names:
            method = getattr(version, name, None)
            if not callable(method):
                continue
            try:
                text = _text(method())
            except Exception as error:
                failed = failed or f"<{name}() failed: {_reason(error)}>"
                continue
            if text:
                return text
        return failed

    if hasattr(version, "vendor_string") or hasattr(version, "product_string"):
        return {
            "product": first("product_string"),
            "vendor": first("vendor_string"),
            "version": first("version_string_with_package", "version_string"),
        }
    if isinstance(version, ModuleType):
        info = getattr(version, "version_info", None)
        if any(callable(getattr(info, name, None)) for name in _VERSION_METHODS):
            return package_data(info)
        # A path says nothing about the version; the module's name says what was given.
        return {"product": None, "vendor": None, "version": f"<module {version.__name__!r}>"}
    # pbr.version.VersionInfo (its str() is its version_string())
    package = getattr(version, "package", None)
    return {
        "product": _text(package) if package else None,
        "vendor": None,
        "version": first("release_string", "version_string") or _text(version),
    }


#: The methods of a version object (Nova-style, or pbr's VersionInfo).
_VERSION_METHODS = ("release_string", "version_string", "vendor_string", "product_string",
                    "version_string_with_package")


def _reason(error: BaseException) -> str:
    """An exception's type and the first line of its text (its text may
    itself fail to be made)."""
    try:
        lines = _text(error).splitlines()
    except Exception as inner:  # an exception whose __str__ raises
        lines = [f"<its text failed: {type(inner).__name__}>"]
    return f"{type(error).__name__}: {redact.redact_text(lines[0])}" if lines and lines[0] \
        else type(error).__name__


# -- Threads and greenlets -----------------------------------------------------


def threads_data(captured: snapshot.Snapshot, options: Options,
                 stacks: StackTableBuilder) -> tuple[ThreadRecord, ...] | tuple[Group, ...]:
    kernels = facts.threads_facts(thread.native_id for thread in captured.threads)
    unknown = facts.ThreadFacts(None, None)
    pool_of = {ident: pool.id for pool in captured.pools for ident in pool.workers}
    records = []
    for thread in captured.threads:
        kernel = kernels.get(thread.native_id or 0, unknown)
        records.append(ThreadRecord(thread.ident, thread.name, thread.native_id, thread.is_main,
                                    thread.daemon, kernel.state, kernel.cpu_seconds,
                                    stacks.stack(thread.frames), pool_of.get(thread.ident),
                                    captured.waits.get(thread.ident)))
    if options.group_stacks:
        return _grouped(records, map(_stack_and_pool, records))
    return tuple(records)


def deadlocks_data(captured: snapshot.Snapshot) -> tuple[DeadlockRecord, ...]:
    """Each cycle of threads waiting for a lock the next one holds."""
    names = {thread.ident: thread.name for thread in captured.threads}
    return tuple(
        DeadlockRecord(tuple(DeadlockLink(ident, names.get(ident),
                                          captured.waits[ident])
                             for ident in cycle))
        for cycle in waits.cycles(captured.waits))


def pools_data(captured: snapshot.Snapshot) -> tuple[PoolRecord, ...]:
    """Each thread pool, its workers busy or idle as their captured stacks
    show them (a worker whose thread the capture did not see is neither)."""
    captured_threads = {thread.ident: thread for thread in captured.threads}
    running = pools.Tasks(captured.pools).running
    records = []
    for pool in captured.pools:
        submitted = dict(pool.submitted)
        busy: list[PoolWorker] = []
        idle = 0
        for ident in pool.workers:
            thread = captured_threads.get(ident)
            if thread is None:
                continue
            task = running([frame.code for frame in thread.frames])
            if task is None:
                idle += 1
            else:
                at = submitted.get(ident)
                busy.append(PoolWorker(ident, thread.name, task,
                                       None if at is None else max(0.0, pool.read_at - at)))
        records.append(PoolRecord(pool.id, pool.kind, pool.name, pool.max_workers,
                                  len(busy) + idle, len(busy), idle, pool.queued, tuple(busy),
                                  pool.serves))
    return tuple(records)


def greenlets_data(captured: snapshot.Snapshot, options: Options,
                   stacks: StackTableBuilder) -> GreenletRecords | tuple[Group, ...]:
    """Every greenlet but the dead ones (the header counts those), read from
    the snapshot's columns by the interpreter's own loops (map, compress):
    a report may list 10,000 of them, and their records are made a slice at
    a time as they are rendered (model.GreenletRecords)."""
    table = captured.greenlets
    dead = snapshot.STATE_NUMBERS["dead"]
    rows = None if dead not in table.states else array("I", compress(
        range(len(table)), map(dead.__ne__, table.states)))
    listed: Sequence[int] = range(len(table)) if rows is None else rows
    if not listed:
        return ()
    # The model's stack of each of the table's stacks, numbered in the order
    # the listed greenlets first stand in them.
    stack_of = [-1] * len(table.frames)
    for number in dict.fromkeys(map(table.stacks.__getitem__, listed)):
        stack_of[number] = stacks.stack(table.frames[number])
    objects = table.objects if rows is None else list(map(table.objects.__getitem__, rows))
    who = greenlets.identity_columns(objects, stacks.spawning)
    del objects
    records = GreenletRecords(table, rows, stack_of, greenlets.thread_finder(table), who)
    if options.group_stacks:
        return _grouped(records, records.stack_keys())
    return records


def _grouped(records: Sequence[ThreadRecord | GreenletRecord],
             keys: Iterable[Hashable]) -> tuple[Group, ...]:
    """Identical stacks once (keys: each record's, equal where two records
    are one group), largest group first; a few members name each group,
    its count says how many share it."""
    groups = []
    for group in grouping.group_stacks(keys):
        members = tuple(map(records.__getitem__, group.first))
        groups.append(Group(group.count, members, members[0].stack,
                            getattr(members[0], "pool", None)))
    return tuple(groups)


def _stack_and_pool(record: ThreadRecord) -> tuple[int, int | None]:
    return record.stack, record.pool


# -- Processes -----------------------------------------------------------------


def processes_data(options: Options) -> dict[str, Any]:
    me = os.getpid()
    entries = facts.process_entries([me, *facts.descendants(me)])
    environment = redact.redact_environment(
        {name: os.environ[name] for name in options.environment_allowlist if name in os.environ})
    return {
        "process": entries[0] if entries and entries[0]["pid"] == me else None,
        "children": [entry for entry in entries if entry["pid"] != me],
        "facts": facts.process_facts(),
        "environment": environment,
    }


# -- Configuration -------------------------------------------------------------


def _value(value: Any, secrets: list[str]) -> Any:
    """A non-secret option's value with credentials masked, and with the
    value of every secret option (interpolated into it by $name) as ***."""
    value = redact.redact_value(value)
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, redact.MASK)
        return value
    if isinstance(value, list):
        return [_value(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _value(item, secrets) for key, item in value.items()}
    return value


def _strings(value: Any) -> list[str]:
    """The texts a value may show as inside another one's."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a value that cannot be made text cannot leak as text
        return []
    return [text]


def _raw_strings(conf: Any, opt: Any, group: str | None) -> list[str]:
    """What oslo.config holds for an option before converting it (from the
    files, the command line, the environment, a default or an override), so
    that a secret that does not convert still cannot leak through another
    option's text. Reads oslo.config's internals, guarded: a version where they
    differ only finds less."""
    found: list[str] = []
    readers: list[Callable[[], Any]] = [
        lambda: opt._get_from_namespace(conf._namespace, group)[0],
        lambda: conf._env_driver.get(group, opt.name, opt)[0] if conf._use_env else None,
        lambda: opt.default,
        lambda: conf._get_opt_info(opt.dest, group).get("override"),
        lambda: conf._get_opt_info(opt.dest, group).get("default"),
    ]
    for read in readers:
        try:
            raw = read()
        except Exception:
            continue
        if isinstance(raw, str | list | tuple | dict | int | float):
            found += _strings(raw)
    return found


def configuration_data(conf: Any) -> dict[str, dict[str, Any]]:
    """Every option of every registered group; secret ones as ***, and
    credentials inside other values masked. Nothing of a secret option's
    value appears: one that cannot be read is *** and an error naming only
    the exception's type and the option, its value (and whatever part of it
    oslo.config quotes, as its $-interpolation does) is masked wherever
    another option shows it, and when the configuration has secrets, the
    text of an interpolation error is not shown."""
    if conf is None:
        return {}
    groups = [(None, "default", conf._opts)]
    groups += [(name, name, conf._groups[name]._opts) for name in sorted(conf._groups)]
    read: list[tuple[str | None, str, str, Any, Any, BaseException | None]] = []
    secrets: set[str] = set()
    for group, title, registry in groups:
        for name in sorted(registry):
            opt = registry[name]["opt"]
            value: Any = None
            failed: BaseException | None = None
            try:
                value = conf[group][name] if group else conf[name]
            except Exception as error:  # an unset required option, a bad value or template
                failed = error
            if getattr(opt, "secret", False):
                secrets.update(_strings(value))
                secrets.update(_raw_strings(conf, opt, group))
            read.append((group, title, name, opt, value, failed))
    # Longest first; texts shorter than 4 characters would mask half the report.
    hidden = sorted((text for text in secrets if len(text) >= 4), key=len, reverse=True)

    out: dict[str, dict[str, Any]] = {title: {} for _, title, _ in groups}
    for group, title, name, opt, value, failed in read:
        kind = type(failed).__name__
        if getattr(opt, "secret", False):
            out[title][name] = (redact.MASK if failed is None else
                                f"{redact.MASK} <{kind}: secret option {name} could not be read>")
        elif failed is None:
            out[title][name] = _value(value, hidden)
        elif secrets and (kind == "TemplateSubstitutionError"
                          or any("$" in raw for raw in _raw_strings(conf, opt, group))):
            out[title][name] = (f"<{kind}: option {name} could not be read"
                                " (text not shown: it may quote a secret)>")
        else:
            try:
                message = f"<{kind}: {failed}>"
            except Exception:  # an exception whose __str__ raises
                message = f"<{kind}>"
            out[title][name] = _value(message, hidden)
        if group == gmr_opts.GROUP and name in gmr_opts.DEFAULTS:
            # gmr's own option: a value it does not use is shown with the one it does
            refused = (gmr_opts.using(name) if failed is not None
                       else gmr_opts.refused(name, value))
            if refused is not None:
                out[title][name] = f"{out[title][name]} <{refused}>"
    return out


def warm_up(conf: Any) -> None:
    """Do at set-up what only the first report would do, so that it costs
    what every later one does: oslo.config parses and converts each option
    the first time it is read and keeps the value (until the configuration
    is loaded again), the first user name opens the user database, and the
    host's name is read (os.uname() lets the GIL go)."""
    try:
        configuration_data(conf)
    except Exception:  # a configuration not parsed yet: the report says it
        pass
    facts.user_name(os.getuid())
    _host()


# -- Registered sections and the whole report ------------------------------------


def failure(error: BaseException) -> str:
    """The one line saying why a section could not be built or rendered:
    the exception's type and text (its text may itself fail to be made)."""
    try:
        reason = _text(error)
    except Exception as inner:  # an exception whose __str__ raises
        reason = f"<its text failed: {type(inner).__name__}>"
    return f"section failed: {type(error).__name__}: {redact.redact_text(reason)}"


def _text(value: Any) -> str:
    """str() of a value the application made, as an exact str (a str
    subclass's own methods are not called again later, by a renderer)."""
    return str.__str__(value) if isinstance(value, str) else str.__str__(str(value))


def plain(value: Any) -> Any:
    """A registered section's value as plain data (dicts with str keys,
    lists, exact str, int, float, bool, None; any other object as its str()),
    made while the section's guard is on: whatever the application's
    __str__, __iter__, items() or properties raise, or an int past
    sys.set_int_max_str_digits, is that section's one-line error, and the
    renderers never call code the application owns."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        return {_text(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, int):
        value = int.__int__(value)
        if value.bit_length() > 2000:  # might pass sys.get_int_max_str_digits()
            int.__repr__(value)  # ValueError if it does
        return value
    return _text(value)  # any other object (an oslo.reports model is a mapping)


def model_text(value: Any) -> str | None:
    """An oslo.reports model's text through its own attached view, as
    oslo.reports' text report shows it: the model (and every submodel) is
    told to take its text view (set_current_view_type("text")), then made
    text (str() calls the view). None when value is no such model, or one
    without a view (oslo.reports cannot show it at all; gmr shows its data,
    a mapping)."""
    base = sys.modules.get("oslo_reports.models.base")
    model = getattr(base, "ReportModel", None)
    if not isinstance(model, type) or not isinstance(value, model):
        return None
    try:
        viewed: Any = value  # a model of the application's own classes
        viewed.set_current_view_type("text")
    except AttributeError:  # as oslo.reports: a model that has no such method keeps its view
        pass
    if getattr(value, "attached_view", None) is None:
        return None
    return _text(value)


def _title(title: str) -> str:
    try:
        return redact.redact_text(_text(title))
    except Exception as error:
        return f"<title failed: {type(error).__name__}>"


def _guard(kind: str, title: str, build: Callable[[], Any]) -> Section:
    title = _title(title)
    try:
        data = build()
        if kind == "custom":  # the application's own keys and values may hold credentials
            shown = model_text(data)
            data = redact.redact_value(plain(data))
            return Section(title, kind, data,
                           text=None if shown is None else redact.redact_text(shown))
        return Section(title, kind, data)
    except Exception as error:
        return Section(title, kind, None, failure(error))


class _Limited:
    """Registered sections, each called with a time limit in a helper real OS
    thread (started and waited for with the primitives from before
    eventlet/gevent patching, so a section that blocks on a lock, green or
    not, blocks only that helper). Past the limit the report goes on without
    the section's data; while that call has not returned, the section is not
    called again: its line says so instead."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = _originals.allocate_lock()
        #: id(generator) -> (generator, monotonic start) of calls not returned yet.
        self._running: dict[int, tuple[Callable[[], Any], float]] = {}

    def section(self, title: str, generator: Callable[[], Any], limit: float) -> Section:
        if self._pid != os.getpid():  # forked: the parent's helpers are not here
            self._pid, self._lock, self._running = os.getpid(), _originals.allocate_lock(), {}
        lock, running, key = self._lock, self._running, id(generator)
        with lock:
            earlier = running.get(key)
            if earlier is None:
                running[key] = (generator, time.monotonic())
        if earlier is not None:
            return _unfinished(title, "section not called: its call from an earlier report "
                               f"has not returned after {time.monotonic() - earlier[1]:.1f} s")
        done = _originals.allocate_lock()
        done.acquire()
        result: list[Section] = []

        def call() -> None:
            try:
                trigger.name_this_thread("gmr-section")  # not its parent's name, gmr-watcher
                result.append(_guard("custom", title, generator))
            except BaseException as error:  # SystemExit and the like, from the section
                result.append(_unfinished(title, failure(error)))
            finally:
                with lock:
                    running.pop(key, None)
                done.release()

        try:
            _originals.start_new_thread(call, ())
        except Exception as error:  # no thread to be had: say so, call nothing
            with lock:
                running.pop(key, None)
            return _unfinished(title, failure(error))
        if done.acquire(True, max(0.0, limit)) and result:
            return result[0]
        return _unfinished(title, f"section did not finish within {limit:g} s; "
                           "the report goes on without it")


def _unfinished(title: str, error: str) -> Section:
    return Section(_title(title), "custom", None, error)


_limited = _Limited()


@functools.cache
def _host() -> str | None:
    """The host's name as the kernel knows it (no resolver, no socket): with
    the pid, it tells reports gathered from a fleet apart. Read once, at
    set-up (warm_up): os.uname() lets the GIL go, and inside a report each
    let-go waits a switch interval behind the service's busy threads."""
    try:
        return os.uname().nodename or None
    except OSError:
        return None


def header_data(captured: snapshot.Snapshot, displaced: list[int]) -> dict[str, Any]:
    states = captured.greenlets.state_counts()
    stamp = datetime.datetime.fromtimestamp(captured.captured_at, datetime.timezone.utc)
    return {
        "reportVersion": REPORT_VERSION,
        "captured_at": stamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "host": _host(),
        "pid": captured.pid,
        "program": " ".join(redact.redact_argv(list(sys.argv))) or None,
        "trigger": captured.trigger,
        "coalesced": captured.coalesced,
        "gil_pause_ms": round(captured.pause_ns / 1e6, 3),
        "gil_holds": captured.holds,
        "gil_held_ms": round(max(captured.held_ns, captured.pause_ns) / 1e6, 3),
        "threads": len(captured.threads),
        "greenlets": len(captured.greenlets),
        "greenlet_states": states,
        "heap_objects": captured.heap_objects,
        "heap_scanned": captured.heap_scanned,
        "capture": captured.implementation,
        "core_fallback": captured.fallback,
        "displaced_signals": displaced,
        # What gc.freeze() froze is out of the pure walker's sight: say so.
        "frozen_unsearched": 0 if walker.SEES_FROZEN else gc.get_freeze_count(),
        "stall": stall_data(captured),
    }


def stall_data(captured: snapshot.Snapshot) -> dict[str, Any] | None:
    """The loops that had not come round (gmr.stall), each with the name and
    native id of its thread as the Threads section shows it."""
    found = captured.stall
    if found is None:
        return None
    threads = {thread.ident: thread for thread in captured.threads}
    loops = []
    for loop in found.loops:
        thread = threads.get(loop.thread) if loop.thread is not None else None
        loops.append({
            "kind": loop.kind,
            "type": loop.type_name,
            "loop_id": loop.loop_id,
            "thread": loop.thread,
            "thread_name": thread.name if thread is not None else None,
            "native_id": thread.native_id if thread is not None else None,
            "seconds": round(loop.seconds, 3),
            "blocked_after_capture": loop.blocked_after_capture,
        })
    return {"after": found.after, "loops": loops, "unreported": found.unreported}


def build(captured: snapshot.Snapshot, version: Any, conf: Any,
          registered: list[tuple[str, Callable[[], Any]]], options: Options,
          displaced: list[int] | None = None) -> Report:
    """The report model of a snapshot: its sections in order, and the table
    of the distinct stacks their records point into (every frame resolved
    at once, after the sections that name them)."""
    stacks = StackTableBuilder(options.max_stack_depth)
    sections = [_guard("package", "Package", lambda: package_data(version))]
    # Only when there is one, and before the details of every thread.
    deadlocks = _guard("deadlocks", "Deadlocks", lambda: deadlocks_data(captured))
    if deadlocks.data or deadlocks.error:
        sections.append(deadlocks)
    sections.append(_guard("threads", "Threads", lambda: threads_data(captured, options, stacks)))
    if captured.pools:
        sections.append(_guard("pools", "Thread Pools", lambda: pools_data(captured)))
    sections += [
        _guard("greenlets", "Green Threads", lambda: greenlets_data(captured, options, stacks)),
    ]
    if "asyncio" in sys.modules:
        sections.append(_guard("tasks", "Asyncio Tasks", lambda: _tasks_data(stacks)))
    sections += [
        _guard("processes", "Processes", lambda: processes_data(options)),
        _guard("configuration", "Configuration", lambda: configuration_data(conf)),
    ]
    for title, generator in registered:
        sections.append(_limited.section(title, generator, options.section_timeout))
    return Report(header_data(captured, displaced or []), sections, stacks.table())


def _tasks_data(stacks: StackTableBuilder) -> tuple[TaskRecord, ...]:
    return tuple(TaskRecord(task.name, task.state, task.loop_id, task.loop,
                            stacks.stack(task.frames))
                 for task in tasks.capture_tasks())
