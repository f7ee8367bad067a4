"""gmr collect against real processes: several services with the same and
different stacks, forked children of a parent, processes that have not armed
gmr (named, never signalled), saved JSON reports (--files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import PROGRAMS, Service, gmr_armed, reports, wait_for

pytestmark = pytest.mark.timeout(180)

#: A plain Python process without gmr: SIGUSR2 would end it.
PLAIN = "import time; print('ready', flush=True); time.sleep(3600)"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmr", *args], env=env, capture_output=True,
                          text=True, timeout=90)


def validate_merged(text: str) -> dict[str, Any]:
    """collect --json output, checked against gmr/collect.schema.json."""
    import jsonschema

    from gmr.collect import collect_schema

    document: dict[str, Any] = json.loads(text)
    errors = list(jsonschema.Draft202012Validator(collect_schema()).iter_errors(document))
    assert not errors, "\n".join(f"{list(error.path)}: {error.message[:300]}"
                                 for error in errors)
    return document


def functions(group: dict[str, Any]) -> list[str]:
    return [frame[2] for frame in group["frames"]]


def where(document: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The merged thread groups whose stack passes through function."""
    return [group for group in document["threads"] if function in functions(group)]


def pids(group: dict[str, Any]) -> list[int]:
    return [one["pid"] for one in group["processes"]]


@pytest.fixture
def collect_service(service, tmp_path: Path):  # type: ignore[no-untyped-def]
    """collect_service(*args): tests/programs/collect_service.py writing in
    tmp_path/logs, started and ready."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)

    def start(*args: str) -> Service:
        proc: Service = service("collect_service.py", str(logs), *args)
        return proc.ready()

    return start


def test_many_processes_one_view(collect_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first, second = collect_service("--place", "a"), collect_service("--place", "a")
    third = collect_service("--place", "b")
    plain = Service([sys.executable, "-c", PLAIN], dict(os.environ))
    quiet = Service([sys.executable, str(PROGRAMS / "ignores_sigusr2.py")], dict(os.environ))
    try:
        plain.ready()
        quiet.ready()
        result = cli("collect", str(first.pid), str(second.pid), str(third.pid),
                     str(plain.pid), str(quiet.pid), "--log-dir", str(logs), "--json",
                     "--timeout", "30", env=twin_env)
        assert result.returncode == 3, result.stderr
        document = validate_merged(result.stdout)
        assert [one["pid"] for one in document["reports"]] == sorted(
            [first.pid, second.pid, third.pid])
        # The two that are not armed are named, each on one line, and lived.
        assert result.stderr.splitlines() == [
            f"gmr: process {plain.pid} has not set up gmr: it does not catch SIGUSR2 and has "
            "no gmr-watcher thread (SIGUSR2 would end it); --force sends SIGUSR2 anyway",
            f"gmr: process {quiet.pid} has not set up gmr: it ignores SIGUSR2 and has no "
            "gmr-watcher thread; --force sends SIGUSR2 anyway"]
        assert [one["pid"] for one in document["missing"]] == [plain.pid, quiet.pid]
        assert plain.alive() and quiet.alive()
        # The same stack in three processes once; the main threads in two places.
        (blocked,) = where(document, "blocked")
        assert blocked["count"] == 3 and pids(blocked) == sorted(
            [first.pid, second.pid, third.pid])
        assert blocked["processes"][0]["names"] == ["blocked"]
        (in_a,) = where(document, "park_a")
        assert sorted(pids(in_a)) == sorted([first.pid, second.pid]) and in_a["count"] == 2
        (in_b,) = where(document, "park_b")
        assert pids(in_b) == [third.pid]
        # The text view: identical stacks once, under a line that counts them.
        text = cli("collect", str(first.pid), str(second.pid), str(third.pid),
                   "--log-dir", str(logs), "--timeout", "30", env=twin_env)
        assert text.returncode == 0, text.stderr
        assert text.stderr == ""
        ordered = ", ".join(str(pid) for pid in sorted([first.pid, second.pid, third.pid]))
        lines = text.stdout.splitlines()
        head = f"3 processes (pids {ordered}): 3 threads with this stack"
        assert {"  named blocked", "  named short"} <= {
            lines[at + 1] for at, line in enumerate(lines) if line == head}
        a_line = next(index for index, line in enumerate(lines) if "in park_a" in line)
        assert lines[a_line - 8].startswith("2 processes (pids ")
        assert lines[a_line - 8].endswith("): 2 threads with this stack")
        assert lines[a_line - 7] == "  named parked"
        assert text.stdout.count("in park_a\n") == 1
        # Every report the three wrote is JSON, and one per process each time.
        assert len(reports(logs)) == 6
    finally:
        plain.cleanup()
        quiet.cleanup()


def test_children_of_a_parent(collect_service, twin_env, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    parent = collect_service("--children", "2")
    children = sorted(int(line.split()[1]) for line in parent.wait_for_lines("child", 2))
    for child in children:
        assert wait_for(lambda child=child: gmr_armed(child), 30), child
    result = cli("collect", "--children-of", str(parent.pid), "--log-dir", str(logs),
                 "--json", "--timeout", "30", env=twin_env)
    assert result.returncode == 0, result.stderr
    document = validate_merged(result.stdout)
    assert [one["pid"] for one in document["reports"]] == children  # not the parent
    (parked,) = where(document, "park_child")
    assert pids(parked) == children and parked["count"] == 2
    assert all(Path(one["source"]).parent == logs for one in document["reports"])
    # A process without children is one line.
    lone = cli("collect", "--children-of", str(children[0]), "--log-dir", str(logs),
               env=twin_env)
    assert (lone.returncode, lone.stdout) == (1, "")
    assert lone.stderr == f"gmr: process {children[0]} has no children\n"


def test_text_reports_and_silence_are_named(collect_service, twin_env,
                                            tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    text = collect_service("--format", "text")
    result = cli("collect", str(text.pid), "--log-dir", str(logs), "--timeout", "30",
                 env=twin_env)
    assert (result.returncode, result.stdout) == (1, "")
    (path,) = reports(logs)
    assert result.stderr == (
        f"gmr: process {text.pid} wrote a text report ({path}): collect reads JSON reports "
        "([oslo_reports] format = json or json-compact)\ngmr: no report to show\n")
    quiet = Service([sys.executable, str(PROGRAMS / "ignores_sigusr2.py")], dict(os.environ))
    try:
        quiet.ready()
        forced = cli("collect", str(quiet.pid), "--log-dir", str(logs), "--force",
                     "--timeout", "1", env=twin_env)
        assert forced.returncode == 1
        assert forced.stderr == (f"gmr: process {quiet.pid} no new report within 1 s\n"
                                 "gmr: no report to show\n")
        assert quiet.alive()
    finally:
        quiet.cleanup()


def test_saved_reports_from_many_hosts(collect_service, twin_env, tmp_path: Path) -> None:
    """--files: reports gathered elsewhere (a directory per host, as Ansible's
    fetch lays them out, and json-compact lines a log pipeline kept), merged
    as the live ones are; a file without a report is named."""
    logs = tmp_path / "logs"
    first = collect_service("--format", "json-compact", "--place", "a")
    second = collect_service("--format", "json-compact", "--place", "b")
    live = cli("collect", str(first.pid), str(second.pid), "--log-dir", str(logs), "--json",
               "--timeout", "30", env=twin_env)
    assert live.returncode == 0, live.stderr
    saved = {Path(one["source"]).name: Path(one["source"]).read_text()
             for one in validate_merged(live.stdout)["reports"]}
    (first_name, first_text), (second_name, second_text) = sorted(saved.items())
    host = tmp_path / "fetched" / "host1"
    host.mkdir(parents=True)
    (host / first_name).write_text(first_text)
    (host / "nova-api.log").write_text("a log line\n")  # found in a directory: passed over
    # The second as the journal keeps it: a prefix, the line, a line cut short.
    journal = tmp_path / "journal.txt"
    journal.write_text(f"Dec 01 10:00:00 host2 collect-gmr[1]: {second_text.strip()}\n"
                       f"Dec 01 10:00:01 host2 collect-gmr[1]: {second_text[:900]}\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("nothing here\n")
    result = cli("collect", "--files", str(tmp_path / "fetched"), str(journal), str(notes),
                 "--json", env=twin_env)
    assert result.returncode == 3, result.stderr
    assert result.stderr == f"gmr: {notes} holds no gmr JSON report\n"
    merged = validate_merged(result.stdout)
    live_merged = json.loads(live.stdout)
    assert merged["threads"] == live_merged["threads"]
    assert merged["greenlets"] == live_merged["greenlets"]
    assert {one["source"] for one in merged["reports"]} == {str(host / first_name),
                                                            str(journal)}
    # Only a line cut short: named as such.
    cut = tmp_path / "cut.txt"
    cut.write_text(second_text[:900] + "\n")
    failed = cli("collect", "--files", str(cut), env=twin_env)
    assert failed.returncode == 1
    assert failed.stderr == (f"gmr: {cut} holds a JSON report cut short (syslog cuts long "
                             "lines: ship json-compact through journald or a file)\n"
                             "gmr: no report to show\n")


@pytest.mark.parametrize("args, message", [
    ([], "give --log-dir"),
    (["123"], "give --log-dir"),
    (["--log-dir", "."], "give the processes"),
    (["123", "--files", "x"], "--files reads saved reports"),
    (["12x", "--log-dir", "."], "invalid int value"),
    (["1", "--log-dir", ".", "--signal", "SIGNOPE"], "is not a signal"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = cli("collect", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert message in result.stderr and "Traceback" not in result.stderr


def test_no_process(tmp_path: Path) -> None:
    missing = 2**22 + 1  # above the default pid_max
    result = cli("collect", str(missing), "--log-dir", str(tmp_path), "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr == f"gmr: no process {missing}\ngmr: no report to show\n"
    gone = cli("collect", "--log-dir", str(tmp_path / "nowhere"), "1")
    assert gone.returncode == 1
    assert gone.stderr == f"gmr: log directory {tmp_path / 'nowhere'} does not exist\n"
