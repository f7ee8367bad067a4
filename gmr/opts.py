"""The [oslo_reports] options: oslo.reports' three, with the same names and
meaning, and gmr's own, each defaulting to what oslo.reports does."""

from __future__ import annotations

import copy
import math
from typing import Any

from oslo_config import cfg

GROUP = "oslo_reports"

#: The report formats: the oslo.reports text, JSON, JSON on one line.
FORMATS = ("text", "json", "json-compact")

#: The values each numeric option accepts, bounds included (None: no upper
#: bound). gmr checks them itself, when it reads an option, rather than
#: through oslo.config's min and max: a value out of range then gives one
#: line on stderr that names the option, the value and the default used
#: (oslo.config's error names neither), and the same check holds when the
#: application registered oslo.reports' own declaration of an option.
RANGES: dict[str, tuple[float, float | None]] = {
    "file_event_handler_interval": (0.01, 3600.0),
    "watchdog_timeout": (0.0, 3600.0),
    "section_timeout": (0.1, 600.0),
    "max_stack_depth": (0, None),
    "max_reports": (0, None),
    "max_bytes": (0, None),
    "report_burst": (1, 1000),
    "report_interval": (0.0, 3600.0),
    "stall_report_after": (0.1, 3600.0),
    "stall_report_interval": (0.0, 3600.0),
}

#: Options that also accept 0 (off) below their range.
OFF_AT_ZERO = frozenset({"stall_report_after"})


def out_of_range(name: str, value: Any) -> str | None:
    """Why value is not one option name accepts (None: it is, or the option
    has no range)."""
    if name not in RANGES or value is None:
        return None
    low, high = RANGES[name]
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return "not a number"
    if number == 0 and name in OFF_AT_ZERO:
        return None
    if math.isnan(number) or number < low or (high is not None and number > high):
        within = f"{low:g}..{high:g}" if high is not None else f"{low:g} or more"
        if name in OFF_AT_ZERO:
            return f"neither 0 nor within {within}"
        return f"outside {within}" if high is not None else f"below {low:g}"
    return None


def using(name: str) -> str:
    """What gmr says it uses instead of a value of option name it refuses."""
    return f"using {DEFAULTS[name]!r}"


def refused(name: str, value: Any) -> str | None:
    """Why gmr does not use a value of option name, and the default it uses
    instead (None: the value is used)."""
    reason = out_of_range(name, value)
    return None if reason is None else f"{reason}; {using(name)}"

_options = [
    cfg.StrOpt("log_dir", help="Path to a log directory where to create a file"),
    cfg.StrOpt(
        "file_event_handler",
        help="The path to a file to watch for changes to trigger the reports, instead of "
        "signals. Setting this option disables the signal trigger for the reports. If "
        "application is running as a WSGI application it is recommended to use this "
        "instead of signals.",
    ),
    cfg.FloatOpt(
        "file_event_handler_interval",
        default=1,
        help="How many seconds to wait between polls when file_event_handler is set "
        "(0.01 to 3600; a value outside gives one line on stderr and the default)",
    ),
    cfg.StrOpt(
        "format",
        default="text",
        choices=list(FORMATS),
        help="Report format: the oslo.reports text, JSON, or JSON on one line for log "
        "shippers.",
    ),
    cfg.BoolOpt(
        "group_stacks",
        default=False,
        help="Show identical thread and greenlet stacks once, with a count and the ids that "
        "share them, instead of one listing per thread and greenlet.",
    ),
    cfg.IntOpt(
        "max_stack_depth",
        default=0,
        help="Past this many frames, keep a stack's outermost and innermost frames and say "
        "how many are omitted. 0 shows every frame. Negative: the default, said on stderr.",
    ),
    cfg.FloatOpt(
        "watchdog_timeout",
        default=1.0,
        help="When the GIL has not come this many seconds after a trigger (a C call holds "
        "it), write a degraded report without it first. 0 disables. 0 to 3600; a value "
        "outside gives one line on stderr and the default.",
    ),
    cfg.FloatOpt(
        "section_timeout",
        default=5.0,
        help="Seconds a registered section may take; past them the report goes out without "
        "its data, its section saying so, and it is not called again until that call "
        "returns. 0.1 to 600; a value outside gives one line on stderr and the default.",
    ),
    cfg.IntOpt("max_reports", default=0,
               help="Keep at most this many reports in log_dir, oldest deleted first. 0: all. "
               "Negative: the default, said on stderr."),
    cfg.IntOpt("max_bytes", default=0,
               help="Keep at most this many bytes of reports in log_dir, oldest deleted "
               "first. 0: no limit. Negative: the default, said on stderr."),
    cfg.IntOpt("report_burst", default=10,
               help="This many reports may come back to back; after them, at most one each "
               "report_interval seconds, the triggers meanwhile folded into it (and counted "
               "in its header). 1 to 1000; a value outside gives one line on stderr and the "
               "default."),
    cfg.FloatOpt("report_interval", default=10.0,
                 help="Past report_burst reports, at most one report each this many seconds. "
                 "0 lifts the limit. 0 to 3600; a value outside gives one line on stderr and "
                 "the default."),
    cfg.FloatOpt("stall_report_after", default=0.0,
                 help="When an eventlet or gevent hub or an asyncio event loop (in any thread) "
                 "has not come round for this many seconds, write a report by itself, while "
                 "the loop is still blocked, so that its stacks show what blocks it; its "
                 "header says which loop and for how long. One report per stall. Each "
                 "watched loop then runs a timer every quarter of this time. 0 (the "
                 "default) turns it off and costs nothing; else 0.1 to 3600. A value outside "
                 "gives one line on stderr and the default."),
    cfg.FloatOpt("stall_report_interval", default=60.0,
                 help="At most one stall report each this many seconds, across stalls and "
                 "loops; a stall that ends meanwhile is counted in the next report that shows "
                 "one. Apart from report_burst and report_interval: stall reports take none "
                 "of the triggers' reports. 0: one per stall. 0 to 3600; a value outside "
                 "gives one line on stderr and the default."),
    cfg.ListOpt("environment_allowlist", default=[],
                help="Environment variables the report may show. None by default."),
]


#: Each option's default: what gmr uses where a value is refused.
DEFAULTS: dict[str, Any] = {opt.name: opt.default for opt in _options}


def set_defaults(conf: cfg.ConfigOpts, **defaults: Any) -> None:
    """Register the [oslo_reports] options on conf (once), and set any of
    their defaults given as keyword arguments."""
    conf.register_opts(_options, group=GROUP)
    for name, value in defaults.items():
        conf.set_default(name, value, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """The options, for oslo-config-generator (entry point oslo.config.opts: gmr)."""
    return [(GROUP, copy.deepcopy(_options))]
