"""The public API, with oslo.reports' names and meaning.

``TextGuruMeditation.setup_autorun()`` arms the trigger (SIGUSR2, another
signal, or a file) and starts the watcher; each trigger then gives one report,
built and written in the watcher's own thread, never in a signal handler and
never on the main thread. ``TextGuruMeditation(version).run()`` makes a report
now, in the calling thread.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from gmr import opts as gmr_opts
from gmr import pipeline, report, servers, sinks, snapshot, watcher
from gmr._impl import FALLBACK

#: Whether this process has said on stderr that it runs on pure twins. A
#: forked child inherits it: its parent said it already.
_fallback_stated = False


def program_name() -> str:
    """The program's name, as oslo.reports names its reports: the script's
    basename as it is ("service.py", "nova-api" for a console script); for
    ``python -m`` the module run (not runpy.py), for ``-c`` or stdin the
    interpreter's name; never threading.py, whichever thread asks."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        name: str = spec.name
        return name[: -len(".__main__")] if name.endswith(".__main__") else name
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 in ("", "-c", "-"):
        return os.path.basename(sys.executable) or "python"
    # A directory or zip file run as a program: its own name.
    return os.path.basename(argv0.rstrip(os.sep)) or argv0


class _Settings:
    """What setup_autorun was told: one per process."""

    version: Any = None
    service_name: str | None = None
    log_dir: str | None = None
    conf: Any = None
    setup_pid: int = 0


class TextGuruMeditation:
    """A Guru Meditation Report, as oslo.reports' class of the same name."""

    _registered: list[tuple[str, Callable[[], Any]]] = []
    _settings = _Settings()
    _watcher: watcher.Watcher | None = None
    #: Lines an operator must know about this process's set-up (uWSGI, ...).
    notes: list[str] = []

    def __init__(self, version: Any = None, traceback: Any = None) -> None:
        self.version = version
        self.traceback = traceback

    # -- sections -------------------------------------------------------------

    @classmethod
    def register_section(cls, section_title: str, generator: Callable[[], Any],
                         *args: Any, **kwargs: Any) -> None:
        """Add a section after the built-in ones: generator() is called at
        report time and may return a str, a mapping, a sequence or any object."""
        cls._registered.append((section_title, generator))

    # -- a report now -------------------------------------------------------------

    def run(self, format: str = "text") -> str:
        """Capture and render a report now, in the calling thread: the
        oslo.reports text, or "json", or "json-compact" (one line)."""
        if format not in gmr_opts.FORMATS:
            raise ValueError(f"unknown report format {format!r}: "
                             f"one of {', '.join(gmr_opts.FORMATS)}")
        captured = pipeline.take(trigger="api", include_caller=True)
        return pipeline.text(captured, self._request(self.version, format))

    @classmethod
    def _conf(cls) -> Any:
        """The configuration to report: setup_autorun's, else oslo.config's
        global CONF (as oslo.reports does)."""
        if cls._settings.conf is not None:
            return cls._settings.conf
        from oslo_config import cfg

        return cfg.CONF

    #: The lines already said about bad option values: each is said once.
    _said: set[str] = set()

    @classmethod
    def _option(cls, name: str) -> Any:
        """The value of [oslo_reports] name, or its default. The one place
        where a value an option does not accept (one oslo.config refuses, or
        one outside gmr_opts.RANGES) becomes one line on stderr, naming the
        option, the value and the default used: the service and its reports
        go on with the default (and the report's Configuration says so)."""
        default = gmr_opts.DEFAULTS[name]
        conf = cls._settings.conf
        if conf is None:
            return default
        try:
            value = getattr(conf.oslo_reports, name)
        except ValueError as error:  # a bad value in the configuration file
            cls._say_once(f"[oslo_reports] {name}: {error}; {gmr_opts.using(name)}")
            return default
        except Exception:  # not registered, or not parsed yet
            return default
        refused = gmr_opts.refused(name, value)
        if refused is not None:
            cls._say_once(f"[oslo_reports] {name}: {value!r} is {refused}")
            return default
        return value

    @classmethod
    def _say_once(cls, line: str) -> None:
        if line not in cls._said:
            cls._said.add(line)
            watcher.error_line(line)

    @classmethod
    def _request(cls, version: Any, form: str) -> pipeline.Request:
        """What a report is made of now: the options as [oslo_reports] says."""
        options = report.Options(
            group_stacks=bool(cls._option("group_stacks")),
            max_stack_depth=int(cls._option("max_stack_depth") or 0),
            environment_allowlist=tuple(cls._option("environment_allowlist") or ()),
            section_timeout=float(cls._option("section_timeout") or 5.0),
        )
        displaced = cls._watcher.displaced() if cls._watcher is not None else []
        return pipeline.Request(version, cls._conf(), tuple(cls._registered), options,
                                tuple(displaced), form)

    # -- triggers -------------------------------------------------------------------

    @classmethod
    def setup_autorun(cls, version: Any, service_name: str | None = None,
                      log_dir: str | None = None, signum: int | None = None,
                      conf: Any = None, setup_signal: bool = True) -> None:
        """Arm the triggers: the file trigger when conf.oslo_reports.file_event_handler
        is set (and no signum is given), else SIGUSR2 (or signum). Calling it
        again re-configures the same watcher: one handler, one file watcher.
        Where a native unit runs on its pure twin, one line on stderr says
        so, once per process."""
        global _fallback_stated
        if FALLBACK is not None and not _fallback_stated:
            _fallback_stated = True
            watcher.error_line(FALLBACK)
        settings = cls._settings
        settings.version = version
        settings.conf = conf
        if conf is not None:
            try:
                gmr_opts.set_defaults(conf)
            except Exception:  # registered already with other defaults: keep them
                pass
        directory = log_dir or cls._option("log_dir")
        # Resolved once: a later os.chdir of the service does not move its reports.
        settings.log_dir = os.path.abspath(directory) if directory else None
        wanted = service_name or settings.service_name or program_name()
        settings.service_name = sinks.safe_name(wanted)
        if settings.service_name != wanted:
            watcher.error_line(f"service_name {wanted!r} cannot name a file in log_dir: "
                               f"reports are named {settings.service_name!r}")
        settings.setup_pid = os.getpid()

        if cls._watcher is None:
            cls._watcher = watcher.Watcher(cls._on_snapshot, rehearse=cls._rehearse)
        trigger_file = cls._option("file_event_handler")
        cls.notes = servers.uwsgi_advice()
        if trigger_file and not signum:
            cls._watcher.watch_file(trigger_file,
                                    float(cls._option("file_event_handler_interval")))
        elif setup_signal and not servers.in_uwsgi():
            cls._watcher.arm(signum or signal.SIGUSR2)
            servers.follow_gunicorn(cls.rearm_signals)
        cls._watcher.limit_rate(int(cls._option("report_burst")),
                                float(cls._option("report_interval")))
        timeout = float(cls._option("watchdog_timeout") or 0)
        if timeout > 0:
            cls._watcher.enable_watchdog(timeout, settings.log_dir, settings.service_name)
        # Here, in the service's thread: its own hub or loop gets its heartbeat now.
        cls._watcher.watch_stalls(float(cls._option("stall_report_after") or 0),
                                  float(cls._option("stall_report_interval")))
        report.warm_up(cls._conf())
        cls._watcher.start()
        for note in cls.notes:
            watcher.error_line(note)

    @classmethod
    def rearm_signals(cls) -> None:
        """Put gmr's signal handlers back (after a server reset them)."""
        if cls._watcher is not None:
            for signum in cls._watcher.signals:
                cls._watcher.arm(signum)

    @classmethod
    def rearm(cls) -> None:
        """This process's own watcher, pipe and handlers: for servers that fork
        without running Python's fork hooks (a uwsgidecorators.postfork
        function), and to re-install a handler the application displaced."""
        if cls._watcher is None:
            return
        if cls._watcher.pid == os.getpid():
            cls.rearm_signals()
            return
        # Forked without the fork hooks: nothing here is ours yet, and the
        # interpreter still lists the parent's threads. Finishing the fork
        # runs gmr's own hook, which re-arms the watcher.
        if not watcher.finish_fork_without_hooks():
            watcher.error_line("gmr.rearm() ran after other threads started in this forked "
                               "process: call it first in the post-fork function")
        if cls._watcher.pid != os.getpid():
            cls._watcher.rearm()

    @classmethod
    def _rehearse(cls, captured: snapshot.Snapshot) -> None:
        # The application's own sections are not called: only a trigger does.
        request = cls._request(cls._settings.version, str(cls._option("format") or "text"))
        pipeline.rehearse(captured, dataclasses.replace(request, registered=()))

    @classmethod
    def _on_snapshot(cls, captured: snapshot.Snapshot) -> None:
        settings = cls._settings
        request = cls._request(settings.version, str(cls._option("format") or "text"))
        destination = pipeline.Destination(
            settings.log_dir, settings.service_name or program_name(),
            f".{captured.pid}" if captured.pid != settings.setup_pid else "",
            int(cls._option("max_reports") or 0), int(cls._option("max_bytes") or 0))
        try:
            pipeline.deliver(captured, request, destination)
        except OSError as error:
            if not settings.log_dir:
                watcher.error_line(f"report to stderr: {error.strerror or error}")
                return
            reason = error.strerror or str(error)
            watcher.error_line(f"cannot write the report in {settings.log_dir}: {reason}; "
                               "the next trigger tries again")
