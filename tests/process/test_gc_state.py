"""A report leaves the service's GC as it found it, and shows the
service's own GC state, not the pause it makes for itself."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from conftest import PROGRAMS, Service, next_report


def gc_facts(text: str) -> list[str]:
    """The Processes section's gc lines: enabled, thresholds."""
    lines = text.splitlines()
    start = lines.index("gc = ")
    facts = [line.strip() for line in lines[start + 1 : start + 7]]
    return [line for line in facts if line.startswith(("enabled", "thresholds"))]


def test_report_shows_and_keeps_the_services_gc_state(twin_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    svc = Service([sys.executable, str(PROGRAMS / "gc_state.py"), str(tmp_path)], twin_env)
    try:
        svc.ready()
        text = next_report(svc, tmp_path).read_text()
        # What the service had when the report began: enabled, its thresholds.
        assert gc_facts(text)[:2] == ["enabled = True", "thresholds = 500 / 7 / 9"]
        assert "gc disabled by the service" in text
        # The service turned its GC off during the report: gmr leaves it off,
        # and puts back the thresholds it paused.
        svc.kill(signal.SIGUSR1)
        assert svc.wait_for_line("state") == "state enabled=False thresholds=500,7,9"
        # The next report shows the service's state as it is now.
        text = next_report(svc, tmp_path).read_text()
        assert gc_facts(text)[:2] == ["enabled = False", "thresholds = 500 / 7 / 9"]
        svc.kill(signal.SIGUSR1)
        assert svc.wait_for_line("state") == "state enabled=False thresholds=500,7,9"
    finally:
        svc.cleanup()


def test_frozen_objects_the_walker_cannot_search_are_said(twin_env: dict[str, str]) -> None:
    """After gc.freeze(), the compiled walker still finds frozen greenlets;
    the pure one cannot, and its report says so in the header."""
    import subprocess

    code = ("import gc, greenlet, gmr\n"
            "def park(): greenlet.getcurrent().parent.switch()\n"
            "kept = [greenlet.greenlet(park) for _ in range(3)]\n"
            "[g.switch() for g in kept]\n"
            "gc.freeze()\n"
            "text = gmr.TextGuruMeditation('1').run()\n"
            "print([line for line in text.splitlines() if line.startswith('frozen objects')])\n"
            "import re\n"
            "print(len(re.findall(r'^\\s*<string>:2 in park$', text, re.M)))\n")
    out = subprocess.run([sys.executable, "-c", code], env=twin_env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.splitlines()
    if twin_env["GMR_TEST_TWIN"] == "c":
        assert out == ["[]", "3"]
    else:
        assert "not searched for greenlets by this walker" in out[0]
        assert out[1] == "0"
