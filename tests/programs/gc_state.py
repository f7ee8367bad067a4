"""A service that sets its own GC thresholds and turns its GC off from a
registered section, that is, while a report is being made.

    gc_state.py LOG_DIR

Prints "ready", then on each SIGUSR1 a line
"state enabled=<bool> thresholds=<t0>,<t1>,<t2>".
"""

import gc
import signal
import sys

import gmr

gc.set_threshold(500, 7, 9)


def probe() -> str:
    gc.disable()  # the service's own choice, made during a report
    return "gc disabled by the service"


def state(signum, frame) -> None:
    thresholds = ",".join(map(str, gc.get_threshold()))
    sys.stdout.write(f"state enabled={gc.isenabled()} thresholds={thresholds}\n")
    sys.stdout.flush()


gmr.TextGuruMeditation.register_section("GC Probe", probe)
gmr.TextGuruMeditation.setup_autorun("1.0", service_name="gcsvc", log_dir=sys.argv[1])
signal.signal(signal.SIGUSR1, state)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    signal.pause()
