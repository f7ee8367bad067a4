"""The watcher: a real OS thread that waits for triggers and captures.

Triggers reach it through its channel (gmr/_trigger.h: a semaphore, no
descriptor the service could close or reuse): the C signal handler posts
b"S", ``request()`` b"A". The file trigger is a modification-time check the
watcher makes every ``interval`` seconds while it waits. It waits without
the GIL, takes whatever burst has arrived, captures once, and hands
the snapshot to its callback, all in its own thread, concurrently with the
service.

It is started with the original ``_thread.start_new_thread``, so it stays an
OS thread under eventlet and gevent, and it takes no lock that a
monkey-patched program could make green.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import faulthandler
import gc
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from types import FrameType

from gmr import _originals, facts, pipeline, snapshot, stall
from gmr._impl import files, hurried, trigger

_SIGNAL = b"S"
_API = b"A"
_QUIT = b"Q"
_WAKE = b"W"  # re-read the configuration (a new file trigger)


def error_line(message: str) -> None:
    """One whole line on stderr, written straight to fd 2: no logging, no locks."""
    try:
        _originals.write_all(2, f"gmr: {message}\n".encode(errors="replace"))
    except OSError:
        pass


def _spare_realtime_signal() -> int:
    """The highest real-time signal nobody has claimed, for faulthandler: its
    action, read back with sigaction, is the default (a handler installed in
    C, by faulthandler or a library, is not overwritten)."""
    for signum in range(signal.SIGRTMAX - 1, signal.SIGRTMIN, -1):
        if not trigger.signal_taken(signum):
            return signum
    raise OSError("no spare real-time signal for the watchdog")


#: The file trigger's check interval and the watchdog's limit stay within
#: these (seconds): past them, poll()'s milliseconds and the watchdog's
#: nanoseconds would overflow. The options are checked against the same
#: bounds in gmr.opts, with a line on stderr; here the API is only clamped.
MIN_INTERVAL = 0.01
MAX_INTERVAL = 3600.0


def bounded(value: float, low: float, high: float, fallback: float) -> float:
    """value within low..high (fallback for NaN or what is not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return fallback
    if number != number:  # NaN
        return fallback
    return min(high, max(low, number))


class FileTrigger:
    """Each change of a file's modification time is one trigger. The baseline
    is the file itself (or its absence) when watching starts, so a touch right
    after start-up is not missed, and a deleted and re-created file keeps
    working."""

    def __init__(self, path: str, interval: float) -> None:
        self.path = path
        self.interval = bounded(interval, MIN_INTERVAL, MAX_INTERVAL, 1.0)
        self._mtime = self._read()

    def _read(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def fired(self) -> bool:
        mtime = self._read()
        changed = mtime is not None and mtime != self._mtime
        self._mtime = mtime
        return changed


class Watcher:
    """Waits for triggers in a real OS thread and calls ``on_snapshot`` with
    one snapshot per burst of them."""

    def __init__(self, on_snapshot: Callable[[snapshot.Snapshot], None],
                 min_interval: float = 0.5, burst: int = 1,
                 rehearse: Callable[[snapshot.Snapshot], None] | None = None) -> None:
        self.on_snapshot = on_snapshot
        #: Called once, in the watcher's thread before it first waits, with a
        #: snapshot of the process: a report made and thrown away (see
        #: _rehearse_once).
        self.rehearse = rehearse
        self._rehearsed = False
        #: The rate of reports, a token bucket: ``burst`` reports may come
        #: back to back, then one each ``min_interval`` seconds (the option
        #: report_interval; 0 lifts the limit). Triggers that come while the
        #: watcher waits for a token are folded into the report after, and
        #: counted in its header: a storm of signals is a few reports.
        self.min_interval = min_interval
        self.burst = burst
        self._signals: set[int] = set()
        self._file: FileTrigger | None = None
        self._watchdog: tuple[int, int] | None = None
        self._watchdog_config: tuple[float, str | None, str] | None = None
        #: The event loops watched for stalls (gmr.stall); None: not asked.
        self._stalls: stall.Monitor | None = None
        self.reports = 0
        #: Of those, the reports made for a stall.
        self.stall_reports = 0
        #: Whether the last capture (the rehearsal's included) was big
        #: (BIG_REPORT): the next one is then taken in turns with the
        #: service (see _Hurry.size_up).
        self._big = False
        #: Set from before os.fork() until after it: the thread ends, so that
        #: the process forks with no thread of gmr's (see pause_for_fork).
        self._pausing = False
        self._fresh_process_state()
        _watchers.add(self)

    def _fresh_process_state(self) -> None:
        """The channel, locks and thread of this process (after a fork, the
        child's own: it must not wait on its parent's channel)."""
        # What wakes this watcher: no descriptor on the compiled trigger, a
        # pipe checked before each use on the pure one (see gmr/_trigger.h).
        # A forked child's copy of its parent's is closed (the pure twin's
        # descriptors are the child's own copies).
        previous: trigger.Channel | None = getattr(self, "_channel", None)
        if previous is not None:
            previous.close()
        self._channel = trigger.Channel()
        self._channel.prefetch(facts.read_ahead())
        self._signal_count = trigger.signal_count()
        self._lock = _originals.allocate_lock()
        self._done = _originals.allocate_lock()
        self._waiting = _originals.allocate_lock()
        self._tokens: float | None = None  # None: a full bucket
        #: The last report's changes to the interpreter, put back by _settle.
        self._hurry: _Hurry | None = None
        self._refilled = 0.0
        self.ident: int | None = None
        self._native_id: int | None = None
        #: The process this watcher's channel and thread belong to.
        self.pid = os.getpid()

    # -- configuration, from any thread --------------------------------------

    def start(self, timeout: float = 5.0) -> None:
        """Start the thread, and return once it is waiting for triggers: a
        service that gets stuck in C right after start-up must find the
        watcher already in its wait, where it needs no GIL."""
        with self._lock:
            if self.ident is not None:
                return
            facts.remember_green_hub()
            self._done.acquire()
            self._waiting.acquire()  # released by the thread once it waits
            self.ident = _originals.start_new_thread(self._run, ())
            if not self._waiting.acquire(True, timeout):
                error_line(f"the watcher thread did not start within {timeout} s")

    @property
    def running(self) -> bool:
        return self.ident is not None

    def arm(self, signum: int) -> None:
        """Install the C signal handler for signum, pointed at this watcher."""
        trigger.arm(signum, self._channel)
        self._signals.add(int(signum))

    def disarm(self, signum: int) -> None:
        if int(signum) in self._signals:
            trigger.disarm(signum)
            self._signals.discard(int(signum))

    def is_armed(self, signum: int) -> bool:
        """Whether the handler for signum is still gmr's (a later
        ``signal.signal`` silently replaces it)."""
        return trigger.is_armed(signum)

    def displaced(self) -> list[int]:
        """The signals this watcher armed whose handler someone has replaced."""
        return sorted(signum for signum in self._signals if not trigger.is_armed(signum))

    def rearm(self) -> None:
        """Make this process's own watcher again: a new channel, the handlers
        pointed at it for this pid, a new thread, a new watchdog. Run in a
        forked child by os.register_at_fork, and by gmr.rearm() for servers
        that fork without running those hooks. Also re-installs a handler
        that the application displaced."""
        if self._watchdog is not None:
            # The parent's watchdog thread does not exist here; its signal
            # and descriptor do (faulthandler's registration is inherited),
            # and enable_watchdog below starts a thread on them.
            trigger.forget_watchdog()
        self._fresh_process_state()
        if self._stalls is not None:
            self._stalls.after_fork()
        for signum in self._signals:
            trigger.arm(signum, self._channel)
        if self._file is not None:
            self._file = FileTrigger(self._file.path, self._file.interval)
        if self._watchdog_config is not None:
            self.enable_watchdog(*self._watchdog_config)
        self.start()

    def pause_for_fork(self) -> None:
        """Before os.fork() (a fork hook): end the watcher's and the
        watchdog's threads, so that the process forks with no thread of
        gmr's running: a fork with threads may deadlock the child, and
        Python 3.12+ warns of it. A report under way is finished first (up to
        FORK_WAIT seconds). Signals that come meanwhile wait in the channel;
        resume_after_fork() starts the threads again in the parent, and the
        child makes its own (rearm)."""
        if (self.ident is None or self.pid != os.getpid()
                or _originals.get_ident() == self.ident):  # a fork from a report
            return
        with self._lock:
            self._pausing = True
        if self._watchdog is not None:
            trigger.stop_watchdog()
        self._wake(_WAKE)
        if self._done.acquire(True, FORK_WAIT):
            self._done.release()
            _wait_until_gone(self._native_id)

    def resume_after_fork(self) -> None:
        """After os.fork(), in the parent: the threads pause_for_fork ended."""
        with self._lock:
            paused, self._pausing = self._pausing, False
        if not paused:
            return
        if self.ident is None:
            self.start()  # waits for the old thread to have let go of _done
        if self._watchdog is not None and self._watchdog_config is not None:
            self.enable_watchdog(*self._watchdog_config)

    def _leave_for_fork(self, data: bytes) -> bool:
        """In the thread: whether it ends now because the process is about
        to fork. API requests it took are posted again for the thread after."""
        if not self._pausing:
            return False
        with self._lock:
            if not self._pausing:
                return False
            self.ident = None
        if _API in data:
            self._wake(_API * data.count(_API))
        return True

    @property
    def signals(self) -> frozenset[int]:
        return frozenset(self._signals)

    def watch_file(self, path: str, interval: float) -> None:
        self._file = FileTrigger(path, interval)
        if self.running:
            self._wake(_WAKE)  # a waiting thread takes up the new interval

    @property
    def file_trigger(self) -> FileTrigger | None:
        return self._file

    def enable_watchdog(self, limit: float, directory: str | None, prefix: str) -> bool:
        """After a trigger, past `limit` seconds without the GIL (a C call
        holds it), write a degraded report (faulthandler's all-threads dump,
        which needs no GIL) into `directory`, or to stderr for None; the full
        report follows once the GIL is free. False where the core has no
        watchdog (the pure twin)."""
        if not trigger.WATCHDOG:
            return False
        limit = bounded(limit, 0.0, MAX_INTERVAL, 1.0)
        self._watchdog_config = (limit, directory, prefix)
        if self._watchdog is None:
            signum = _spare_realtime_signal()
            fd = _originals.open_file(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            faulthandler.register(signum, file=fd, all_threads=True, chain=False)
            self._watchdog = (signum, fd)
        trigger.set_degraded_target(directory or "", prefix)
        trigger.start_watchdog(limit, *self._watchdog)
        return True

    def disable_watchdog(self) -> None:
        if self._watchdog is None:
            return
        trigger.stop_watchdog()
        signum, fd = self._watchdog
        faulthandler.unregister(signum)
        os.close(fd)
        self._watchdog = None

    def watch_stalls(self, after: float, interval: float) -> None:
        """Report by itself when an event loop (an eventlet or gevent hub, an
        asyncio loop, in any thread) has not come round for `after` seconds,
        at most once each `interval` seconds across stalls (0: once per
        stall); after <= 0: not at all, and nothing is left in any loop.
        The calling thread's loops are watched at once (gmr.stall)."""
        after = bounded(after, 0.0, MAX_INTERVAL, 0.0)
        interval = bounded(interval, 0.0, MAX_INTERVAL, 60.0)
        monitor = self._stalls
        if after <= 0:
            self._stalls = None
            if monitor is not None:
                monitor.stop()
            return
        if monitor is None:
            monitor = stall.Monitor(after, interval)
        else:
            monitor.configure(after, interval)
        monitor.watch_here()
        self._stalls = monitor
        if self.running:
            self._wake(_WAKE)  # a waiting thread takes up the new timing

    @property
    def stalls(self) -> stall.Monitor | None:
        return self._stalls

    def limit_rate(self, burst: int, interval: float) -> None:
        """``burst`` reports back to back, then at most one each ``interval``
        seconds (0: no limit). Takes effect at the next trigger."""
        self.burst = burst
        self.min_interval = interval

    def request(self) -> None:
        """Ask for a report now (the API trigger)."""
        self._wake(_API)

    def stop(self, timeout: float = 2.0, disarm: bool = True) -> bool:
        """Stop the watcher; returns whether it ended within timeout. With
        disarm=False the handlers stay: at exit, restoring SIG_DFL would let
        a late SIGUSR2 kill the exiting process, while gmr's handler only
        posts to a channel that nobody waits on any more. The loops' heartbeats
        stop themselves."""
        self.disable_watchdog()
        self.watch_stalls(0.0, 0.0)
        for signum in list(self._signals):
            try:
                if disarm:
                    self.disarm(signum)
                else:
                    trigger.quiet(signum)
            except (OSError, ValueError):
                pass
        if self.ident is None:
            return True
        self._wake(_QUIT)
        ended = bool(self._done.acquire(True, timeout))
        if ended:
            self._done.release()
            self.ident = None
        return ended

    def _wake(self, byte: bytes) -> None:
        self._channel.post(byte)

    # -- the thread ----------------------------------------------------------

    def _run(self) -> None:
        try:
            trigger.name_this_thread("gmr-watcher")
            self._native_id = _originals.original("_thread", "get_native_id")()
            self._rehearse_once()
            while self._serve_once():
                pass
        finally:
            self._settle()
            if self._waiting.locked():
                self._waiting.release()
            self._done.release()

    def _rehearse_once(self) -> None:
        """What only the first report would do, done at set-up, so that it
        costs what every later one does: the first look at the young
        generations walks them whole (greenlet discovery), the resolver reads
        each source file once, and the report's code runs a first time. A
        report is made of the process as it is and thrown away; a big one
        (BIG_REPORT) only captured. Once per watcher, before start() returns
        (not again in a forked child, which inherits what it prepared)."""
        if self.rehearse is None or self._rehearsed:
            return
        self._rehearsed = True
        hurry = _Hurry()
        try:
            with hurry.reporting():
                captured = pipeline.take(trigger="rehearsal")
                self._big = is_big(captured)
                if not self._big:
                    self.rehearse(captured)
        except Exception:  # the report itself will say what fails, when asked for
            pass
        finally:
            hurry.relax()

    def _serve_once(self) -> bool:
        file_trigger = self._file
        timeout = file_trigger.interval if file_trigger is not None else None
        # Out of tokens, a trigger is folded into a later report: no degraded
        # report for it either (the watchdog does not time that wait). The
        # wait ends when a token comes, to time the next one again.
        until_token = self._until_token()
        if until_token > 0:
            timeout = until_token if timeout is None else min(timeout, until_token)
        until_check = self._until_stall_check()
        if until_check is not None:
            timeout = until_check if timeout is None else min(timeout, until_check)
        data = b""
        try:
            if self._waiting.locked():
                # start() returns now, but its caller gets the GIL back only
                # when this thread waits without it. A server that forks right
                # after start-up (a uWSGI master) must not fork while this
                # thread holds the GIL: the child would wait for it for ever.
                self._waiting.release()
            self._settle()
            # A trigger has the GIL hurried back to this thread (see _Hurry):
            # the report starts at once.
            data = self._channel.wait(timeout, True, until_token <= 0)
        except OSError as error:
            error_line(f"watcher cannot wait for triggers: {error}")
            return False
        self._hurry = hurry = _Hurry()
        read_ahead = self._channel.prefetched()
        if _QUIT in data or self._leave_for_fork(data):
            return False
        signalled = self._new_signals()
        asked = data.count(_API)
        from_file = 1 if file_trigger is not None and file_trigger.fired() else 0
        # A handler counts a signal before it writes its byte, so a byte
        # whose signal was already counted was answered by the report
        # before it.
        count = signalled + asked + from_file
        if not count:
            self._check_stalls(hurry)
            return True
        kind = "signal" if signalled else "file" if from_file else "api"
        if self._until_token() > 0:
            # Out of tokens: wait for the next one, without the GIL, and
            # answer everything that comes meanwhile with one report.
            hurry.relax()  # nothing to hurry for while it passes
            folded = self._fold(file_trigger)
            if folded is None:
                return False  # stopped while waiting
            count += folded
            read_ahead = []  # of the moment of the trigger, not of the report
        self._spend_token()
        facts.READ_AHEAD.update(read_ahead)
        # A loop stalled now shows in this report, which counts as its report.
        monitor = self._stalls
        self._report(kind, count, hurry, monitor.current() if monitor is not None else None)
        self._check_stalls(hurry)  # a flood of triggers does not keep new loops unseen
        return True

    # -- stalls: loops that have not come round ----------------------------------------

    def _until_stall_check(self) -> float | None:
        """Seconds until the stalls are checked (None: not watched). A wait
        in whole milliseconds that ends before the check would come back
        at once: one more millisecond."""
        monitor = self._stalls
        if monitor is None:
            return None
        return max(0.0, monitor.next_check() - time.monotonic()) + 0.001

    def _check_stalls(self, hurry: _Hurry | None = None) -> None:
        """After a wake-up: the stalls checked when their time has come, and
        a report made for them now if they are to be reported (their own
        rate, no token of the triggers')."""
        monitor = self._stalls
        found = monitor.check() if monitor is not None else None
        if found is None:
            return
        own = hurry is None
        hurry = _Hurry() if hurry is None else hurry
        try:
            self._report("stall", 1, hurry, found)
            self.stall_reports += 1
        finally:
            if own:
                hurry.relax()

    # -- the rate of reports: a token bucket -------------------------------------

    def _limits(self) -> tuple[float, float]:
        """(burst, interval), as numbers the bucket can use (an interval of
        0 or less: no limit)."""
        return (bounded(self.burst, 1.0, 1e9, 1.0) // 1,
                bounded(self.min_interval, 0.0, MAX_INTERVAL, 0.0))

    def _refill(self) -> float:
        """The tokens in the bucket now: one more each interval, at most burst."""
        burst, interval = self._limits()
        now = time.monotonic()
        if interval <= 0 or self._tokens is None:
            tokens = burst
        else:
            tokens = min(burst, self._tokens + (now - self._refilled) / interval)
        self._tokens, self._refilled = tokens, now
        return tokens

    def _until_token(self) -> float:
        """Seconds until the bucket holds a token (0: it does now)."""
        missing = 1.0 - self._refill()
        return missing * self._limits()[1] if missing > 1e-9 else 0.0

    def _spend_token(self) -> None:
        self._refill()
        if self._tokens is not None:
            self._tokens = max(0.0, self._tokens - 1.0)

    def _fold(self, file_trigger: FileTrigger | None) -> int | None:
        """Wait until the bucket holds a token, in the channel's wait (no
        GIL), counting the triggers that come meanwhile: how many there were,
        or None when the watcher was stopped meanwhile (it quits at once).
        Woken by a trigger, the thread pauses a little (without the GIL)
        before it waits again, so a flood wakes it a few times a second, not
        once per trigger."""
        sleep = _originals.original("time", "sleep")
        folded = 0
        while (left := self._until_token()) > 0:
            until_check = self._until_stall_check()
            data = self._channel.wait(left if until_check is None else min(left, until_check),
                                      False, False)
            if _QUIT in data or self._leave_for_fork(data):
                return None  # signals seen meanwhile are counted by the next thread
            folded += data.count(_API)
            # Stalls keep their own rate while triggers wait for a token.
            self._check_stalls()
            if data:
                sleep(min(FOLD_PAUSE, left))
        # A handler counts a signal before it posts, so none is lost here.
        folded += self._new_signals()
        if file_trigger is not None and file_trigger.fired():
            folded += 1
        return folded

    def _new_signals(self) -> int:
        """Signals the handler has seen since the last time this was asked."""
        signals = trigger.signal_count()
        new = signals - self._signal_count
        self._signal_count = signals
        return new

    def _settle(self) -> None:
        """The switch interval the last report lowered put back: the last
        thing before this thread waits without the GIL. A thread that began
        to wait for the GIL while it was low asks its holder to let go half
        a millisecond later; put back sooner, that holder could be this
        thread, which would then wait the service's whole interval for the
        GIL before it waits for the next trigger (and the next report)."""
        hurry, self._hurry = self._hurry, None
        if hurry is not None:
            hurry.relax()

    def _report(self, kind: str, coalesced: int, hurry: _Hurry,
                stalled: stall.Found | None = None) -> None:
        try:
            with hurry.reporting():
                if self._big:
                    hurry.lower()
                captured = pipeline.take(trigger=kind, coalesced=coalesced, turns=self._big)
                if stalled is not None:
                    # Whether each loop was still blocked once the capture was over.
                    captured = dataclasses.replace(captured, stall=stalled.facts())
                big = self._big = hurry.size_up(captured)
                self.on_snapshot(captured)
                del captured
            if big:
                # Its pieces, tens of MB made and freed, would stay in the
                # C heap: given back once the report is out.
                files.trim_heap()
            self.reports += 1
        except Exception as error:  # the service must survive a failed report
            error_line(f"report failed: {type(error).__name__}: {error}")
        finally:
            facts.READ_AHEAD.clear()


#: While it waits for a token, the watcher wakes at most once per this many
#: seconds to count the triggers that came (and to see that it was stopped).
FOLD_PAUSE = 0.05

#: The switch interval while a report is made by the pure twin, or a big
#: report by either (seconds).
REPORT_SWITCH_INTERVAL = 0.0005

#: A report of more threads and greenlets than this is big: tens of ms of
#: Python after the capture (10,000 greenlets: about 100 ms). It is made
#: with the switch interval lowered, so the service's threads, a green hub
#: or a main loop among them, come round every half millisecond while it is
#: made, instead of waiting behind holds of the service's own interval.
BIG_REPORT = 3000


def is_big(captured: snapshot.Snapshot) -> bool:
    """Whether a report of this snapshot is big (BIG_REPORT)."""
    return len(captured.threads) + len(captured.greenlets) > BIG_REPORT


class _Hurry:
    """What a report changes in the interpreter while it is made, and puts back.

    The switch interval: a thread that wants the GIL waits that long (5 ms by
    default) before a busy thread is asked to let go of it, and a report
    lets it go a few times (reads, writes, the hand-overs of a capture). The
    compiled core has the holder asked at once instead (gmr/_switch.h,
    _impl.hurried), and holds the GIL as long as any thread of the service
    may, which makes a small report in one or two holds. Where it cannot (a
    pure unit, no watchdog thread), and for a big report (BIG_REPORT), the
    interval is lowered for the whole report (from the capture on, for a big
    one), so the GIL comes back as soon as a busy thread reaches its next
    check, and put back after, unless the service changed it meanwhile.

    Automatic collection, paused while the report is made: the many objects
    a report builds would otherwise start full collections, each holding the
    GIL for a walk of the whole heap (40 ms with 10,000 greenlets). Reference
    counting frees them once the report is written. It is paused by setting
    the first threshold to 0, not by gc.disable(): the service's own
    gc.enable()/gc.disable() meanwhile keeps its effect, the report shows the
    service's state (facts.SERVICE_GC), and the thresholds are put back
    unless the service set others meanwhile."""

    def __init__(self) -> None:
        self._previous: float | None = None
        self._ours: float | None = None

    def lower(self) -> None:
        if self._ours is not None:
            return
        previous = sys.getswitchinterval()
        if previous > REPORT_SWITCH_INTERVAL:
            sys.setswitchinterval(REPORT_SWITCH_INTERVAL)
            self._previous, self._ours = previous, sys.getswitchinterval()

    def size_up(self, captured: snapshot.Snapshot) -> bool:
        """After the capture: a big report shares the GIL in short turns.
        Whether it is big. Its capture cannot know in time, so the capture
        after a big one is taken with the interval lowered too, and in turns
        (walker.capture): the service has the GIL between two holds as long
        as the hold took, and in those turns its threads take it from each
        other within half a millisecond, a green hub among them."""
        big = is_big(captured)
        if big:
            self.lower()
        return big

    def relax(self) -> None:
        """The switch interval as it was, unless the service changed it since."""
        if self._ours is not None and self._previous is not None:
            if abs(sys.getswitchinterval() - self._ours) < 1e-7:
                sys.setswitchinterval(self._previous)
        self._previous = self._ours = None

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        """Automatic collection paused for one report, and the interval
        lowered where the GIL cannot be hurried back."""
        if not hurried():
            self.lower()
        thresholds = gc.get_threshold()
        facts.SERVICE_GC = (gc.isenabled(), thresholds)
        gc.set_threshold(0, *thresholds[1:])
        paused = gc.get_threshold()
        try:
            yield
        finally:
            facts.SERVICE_GC = None
            if gc.get_threshold() == paused:  # else the service set its own meanwhile
                gc.set_threshold(*thresholds)
            # The interval is put back by Watcher._settle, just before the
            # watcher waits without the GIL.


# Every watcher of this process, for the fork and exit hooks.
_watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()


#: How long os.fork() waits for a report under way to finish before it forks
#: with the watcher still running (seconds).
FORK_WAIT = 2.0


def _wait_until_gone(native_id: int | None, timeout: float = 0.5) -> None:
    """Until the kernel has let the ended thread go: a thread that released
    its last lock may still be in its exit for a moment, and fork() counts it."""
    if native_id is None:
        return
    sleep = _originals.original("time", "sleep")
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/self/task/{native_id}") and time.monotonic() < deadline:
        sleep(0.0002)


#: Python 3.13 counts the process's threads for its multi-threaded-fork
#: warning after the parent's fork hooks have run (3.12 before them, 3.14+
#: before the fork). There the threads come back only once os.fork() has
#: returned to its caller: this is the frame that called it, and the
#: instruction it was at.
_fork_point: tuple[FrameType, int] | None = None


def _before_fork() -> None:
    global _fork_point
    if sys.version_info[:2] == (3, 13):
        caller = sys._getframe(1)
        _fork_point = (caller, caller.f_lasti)
    for watcher in list(_watchers):
        try:
            watcher.pause_for_fork()
        except Exception as error:  # the fork must happen whatever gmr does
            error_line(f"cannot pause for fork: {type(error).__name__}: {error}")


def _after_fork_in_parent() -> None:
    if (_fork_point is not None and only_thread() and threading_main_ident()
            == _originals.get_ident() and trigger.call_in_main_thread(_resume_once_forked)):
        return
    _resume_all()


def _resume_once_forked() -> None:
    """A pending call in the main thread: run at its first bytecode after
    the call was queued, which may still be in a fork hook of another
    library's (then it waits for the next one), else back in the frame that
    called os.fork(). Nothing once the fork point is forgotten: the threads
    came back already, or this is a forked child, which inherited the call
    from its parent and has made its own threads (rearm)."""
    if _fork_point is None:
        return
    caller, lasti = _fork_point
    running = sys._getframe(1)
    while running.f_globals.get("__name__") == "gmr._trigger_py":  # its ctypes callback
        running = running.f_back  # type: ignore[assignment]
    if (running is not caller and caller.f_lasti == lasti
            and trigger.call_in_main_thread(_resume_once_forked)):
        return
    _resume_all()


def threading_main_ident() -> int | None:
    threading = sys.modules.get("threading")
    return threading.main_thread().ident if threading is not None else None


def _resume_all() -> None:
    _forget_fork_point()
    for watcher in list(_watchers):
        try:
            watcher.resume_after_fork()
        except Exception as error:
            error_line(f"cannot resume after fork: {type(error).__name__}: {error}")


def _forget_fork_point() -> None:
    """The fork is over: no reference to the frame that forked is kept (it
    would keep that frame's locals alive until the next fork)."""
    global _fork_point
    _fork_point = None


def _after_fork_in_child() -> None:
    _forget_fork_point()
    for watcher in list(_watchers):
        paused, watcher._pausing = watcher._pausing, False
        if watcher.running or paused:
            try:
                watcher.rearm()
            except Exception as error:  # a child must survive its gmr
                error_line(f"cannot re-arm after fork: {type(error).__name__}: {error}")


def only_thread() -> bool:
    """Whether this process runs a single OS thread (Linux /proc)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def finish_fork_without_hooks() -> bool:
    """In a child that a server forked without Python's fork hooks (uWSGI
    without --py-call-osafterfork), do what os.fork does after fork():
    CPython's PyOS_AfterFork_Child drops the thread states of the parent's
    threads, which do not exist here (a capture would follow their frame
    pointers into stacks that new threads reuse, and crash), and runs the
    fork hooks, gmr's re-arm among them. ctypes.pythonapi keeps the GIL held
    across the call, as the API requires.

    Only safe while this thread is the process's only one: returns False,
    and does nothing, otherwise."""
    if not only_thread():
        return False
    if sys.version_info >= (3, 13):
        # 3.13's PyOS_AfterFork_Child releases the import lock that
        # PyOS_BeforeFork took in the parent: take it here instead.
        import _imp

        _imp.acquire_lock()
    ctypes.pythonapi.PyOS_AfterFork_Child()
    return True


def _at_exit() -> None:
    for watcher in list(_watchers):
        watcher.stop(timeout=1.0, disarm=False)


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
atexit.register(_at_exit)

