"""A service whose every name and value tries to forge the text report.

    hostile_service.py LOG_DIR FORMAT [hostile argv...]

A thread, a gevent greenlet, an asyncio task, exec'd code's file and function,
an option group, a multi-line option value, registered section titles, keys
and values each carry FORGE (a newline, a fake Configuration banner, a fake
option line) or terminal escapes; some registered sections cannot be made text
at all. gmr is set up with log_dir LOG_DIR and format FORMAT; prints "ready".
"""

import asyncio
import sys
import threading

import gevent
from oslo_config import cfg

import gmr
from gmr import opts as gmr_opts

FORGE = "x\n" + "=" * 72 + "\n====" + "Configuration".center(64) + "====\n" + "=" * 72 + \
    "\nfake = 1\n"
TERMINAL = "\x1b[31mred\x1b[0m \x1b]0;title\x07 bell\x07 nul\x00 del\x7f csi\x9b"

log_dir, form = sys.argv[1], sys.argv[2]

stop = threading.Event()

# A thread whose name forges, parked.
threading.Thread(target=stop.wait, name="thread " + FORGE + TERMINAL, daemon=True).start()

# Code compiled from a forging file name, in a forging function, parked in a thread.
namespace: dict = {}
exec(compile("def parked(stop):\n    stop.wait()\n",
             "file " + FORGE + TERMINAL.replace("\x00", ""), "exec"),
     namespace)
parked = namespace["parked"]
# co_qualname exists from 3.11; before, the function's name is what shows.
names = {"co_name": "function " + FORGE + (TERMINAL if sys.version_info < (3, 11) else "")}
if sys.version_info >= (3, 11):
    names["co_qualname"] = "function " + FORGE + TERMINAL
parked.__code__ = parked.__code__.replace(**names)
threading.Thread(target=parked, args=(stop,), name="exec'd", daemon=True).start()

# A gevent greenlet whose name forges, parked in the hub.
green = gevent.Greenlet(gevent.sleep, 3600)
green.name = "greenlet " + FORGE + TERMINAL
green.start()
gevent.sleep(0.05)


# An asyncio task whose name forges, in a loop of its own thread.
async def waits(event: asyncio.Event) -> None:
    await event.wait()


async def serve(ready: threading.Event) -> None:
    event = asyncio.Event()
    task = asyncio.create_task(waits(event), name="task " + FORGE + TERMINAL)
    await asyncio.sleep(0)
    ready.set()
    await task


loop_ready = threading.Event()
threading.Thread(target=lambda: asyncio.run(serve(loop_ready)), name="loop",
                 daemon=True).start()
loop_ready.wait(10)

# Options: a group named to forge, and values that do.
CONF = cfg.ConfigOpts()
gmr_opts.set_defaults(CONF)
CONF.register_opts([cfg.StrOpt("multi", default="line one\n" + FORGE + TERMINAL)],
                   group="group " + FORGE)
CONF.register_opts([cfg.StrOpt("value", default="value " + FORGE + TERMINAL),
                    cfg.ListOpt("items", default=["item " + FORGE, TERMINAL])])
CONF([], project="hostile-test")
CONF.set_override("format", form, group="oslo_reports")


class Detached:
    """A detached ORM row: reading it raises."""

    def __str__(self) -> str:
        raise RuntimeError("Instance is not bound to a Session")

    __repr__ = __str__


class BadFormat:
    def __format__(self, spec: str) -> str:
        raise RuntimeError("no format")

    def __str__(self) -> str:
        return "shown by str()"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("nor its text")


def raises_unprintable() -> None:
    raise Unprintable()


section = gmr.TextGuruMeditation.register_section
section("Before", lambda: {"fine": "yes"})
section("Title " + FORGE + TERMINAL, lambda: {"key " + FORGE + TERMINAL: "value " + FORGE,
                                            "=starts": ["=item", {"=k": "=v"}]})
section("Own Lines", lambda: "first\n" + "=" * 72 + "\n====  Configuration  ====\r\n"
        "fake = 1\x1b[2J\u2028last")
section("Detached Row", lambda: Detached())
section("Detached In A Mapping", lambda: {"row": Detached()})
section("Huge Integer", lambda: {"n": 10 ** 5000})
section("Unprintable Exception", raises_unprintable)
section("Bad Format", lambda: {"k": BadFormat()})
section("Not Finite", lambda: {"nan": float("nan"), "inf": float("inf"),
                               "-inf": float("-inf"), "surrogate": "bad \udc80 byte"})
section("After", lambda: {"still": "here"})

gmr.TextGuruMeditation.setup_autorun("1", conf=CONF, log_dir=log_dir, service_name="hostile")
print("ready", flush=True)
stop.wait()
