"""What a report tells an operator, on real services and both twins, in text
and in JSON: thread identity and kernel state, gevent greenlet identity,
grouped stacks, masked credentials and environment, asyncio tasks, and
retention in log_dir."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from conftest import Service, next_report, reports, section, validate_report

pytestmark = pytest.mark.timeout(180)


class Reports(NamedTuple):
    """One report in each format from two services alike but for the format."""

    text: str
    json_text: str
    json: dict[str, Any]
    text_service: Service
    json_service: Service


def both_formats(report_service, tmp_path: Path, *args: str, options: str = "",  # type: ignore[no-untyped-def]
                 conf: str = "", env: dict[str, str] | None = None) -> Reports:
    """Start a text and a JSON service side by side (options go to
    [oslo_reports], conf after it) and signal each for one report."""
    started = []
    for form in ("text", "json"):
        logs = tmp_path / f"logs-{form}"
        logs.mkdir()
        whole = f"[oslo_reports]\nlog_dir = {logs}\nformat = {form}\n{options}\n{conf}"
        started.append((report_service(*args, conf=whole, env=env, ready=False), logs))
    texts = []
    for svc, logs in started:
        svc.ready()
        texts.append(next_report(svc, logs).read_text())
    return Reports(texts[0], texts[1], validate_report(texts[1]), started[0][0], started[1][0])


def functions(frames: list[list[Any]]) -> list[str]:
    return [frame[2] for frame in frames]


# -- 1. threads ----------------------------------------------------------------


def test_thread_identity_kernel_state_and_cpu(report_service, tmp_path: Path) -> None:
    found = both_formats(report_service, tmp_path, "--thread-kinds")

    threads = {thread["name"]: thread for thread in section(found.json, "threads")}
    main, sleeper, spinner = threads["MainThread"], threads["sleeper"], threads["spinner"]
    assert [name for name, thread in threads.items() if thread["main"]] == ["MainThread"]
    assert main["native_id"] == found.json["header"]["pid"]
    assert len({thread["native_id"] for thread in threads.values()}) == len(threads)
    assert len({thread["id"] for thread in threads.values()}) == len(threads)
    assert (sleeper["daemon"], spinner["daemon"], threads["worker-0"]["daemon"]) == (
        False, True, True)
    assert (sleeper["state"], spinner["state"]) == ("sleeping", "running")
    assert spinner["cpu_seconds"] > sleeper["cpu_seconds"]
    assert "sleeps" in functions(sleeper["frames"])
    assert functions(spinner["frames"])[-1] == "spins"

    # The text: a banner with the ident, then the facts in parentheses.
    def facts(name: str) -> re.Match[str]:
        match = re.search(rf"Thread #(\d+) +-+\n\n\({name}, native id (\d+), (.*)\)\n", found.text)
        assert match, name
        return match

    pid = re.search(r"^pid = (\d+)$", found.text, re.MULTILINE)
    assert pid and facts("MainThread").group(2) == pid.group(1)
    assert re.fullmatch(r"main thread, \w+, cpu \d+\.\d\d s", facts("MainThread").group(3))
    # Both wait on the program's stop Event, which the facts say.
    event = r"waiting on threading\.Event (0x[0-9a-f]+)"
    spinning = re.fullmatch(r"daemon, running, cpu (\d+\.\d\d) s", facts("spinner").group(3))
    sleeping = re.fullmatch(rf"sleeping, cpu (\d+\.\d\d) s, {event}", facts("sleeper").group(3))
    assert spinning and sleeping
    assert float(spinning.group(1)) > float(sleeping.group(1))
    working = re.fullmatch(rf"daemon, sleeping, cpu \d+\.\d\d s, {event}",
                           facts("worker-0").group(3))
    assert working and working.group(1) == sleeping.group(2)
    assert (sleeper["wait"]["type"], sleeper["wait"]["lock"]) == ("threading.Event", False)
    assert sleeper["wait"]["id"] == threads["worker-0"]["wait"]["id"]


# -- 2. gevent greenlets ---------------------------------------------------------

GREENLET_TYPE = r"gevent\.[\w.]*Greenlet"


def test_gevent_greenlet_identity(report_service, tmp_path: Path) -> None:
    found = both_formats(report_service, tmp_path, "--monkey", "gevent", "--gevent-greenlets")

    def assigned_ident(svc: Service) -> int:
        (line,) = [line for line in svc.stdout_lines if line.startswith("minimal_ident ")]
        return int(line.split()[1])

    # JSON: names, gevent's ident, states, parents, the thread, the spawner.
    ident = assigned_ident(found.json_service)
    greenlets = section(found.json, "greenlets")
    named = {green["name"]: green for green in greenlets if green["name"]}
    poller, numbered, pending = named["poller"], named[f"Greenlet-{ident}"], named["never-started"]
    (hub,) = [green for green in greenlets if green["type"] == "gevent.hub.Hub"]
    (main_greenlet,) = [green for green in greenlets if green["parent"] is None]
    (main_thread,) = [thread for thread in section(found.json, "threads") if thread["main"]]
    assert (poller["state"], numbered["state"], pending["state"]) == (
        "suspended", "suspended", "not started")
    # The hub runs while the main greenlet sleeps; caught just as main woke,
    # it is the other way round.
    assert {hub["state"], main_greenlet["state"]} == {"running", "suspended"}
    assert (poller["minimal_ident"], numbered["minimal_ident"]) == (None, ident)
    assert poller["parent"] == numbered["parent"] == pending["parent"] == hub["id"]
    assert hub["parent"] == main_greenlet["id"]
    for green in (poller, numbered, pending, hub, main_greenlet):
        assert green["thread"] == main_thread["id"], green
    assert functions(poller["frames"])[-2] == "parked_forever"
    assert pending["frames"] == []
    for green in (poller, numbered, pending):
        assert green["spawned_by"] == main_greenlet["id"]
        assert functions(green["spawning_stack"])[-1] == "spawn_gevent_greenlets"
    # The finished one is counted, not listed.
    assert found.json["header"]["greenlet_states"]["dead"] >= 1
    assert "dead" not in {green["state"] for green in greenlets}

    # Text: the facts line, then the stack, then where it was spawned.
    ident = assigned_ident(found.text_service)
    hexid = r"0x[0-9a-f]+"
    assert re.search(rf"^\(id {hexid}, {GREENLET_TYPE}, poller, suspended, parent {hexid}, "
                     rf"in thread #\d+\)$", found.text, re.MULTILINE)
    assert re.search(rf"^\(id {hexid}, {GREENLET_TYPE}, Greenlet-{ident} \(#{ident}\), "
                     rf"suspended, parent {hexid}, in thread #\d+\)$", found.text, re.MULTILINE)
    assert re.search(rf"^\(id {hexid}, {GREENLET_TYPE}, never-started, not started, "
                     rf"parent {hexid}, in thread #\d+\)$", found.text, re.MULTILINE)
    assert re.search(rf"^\(id {hexid}, gevent\.hub\.Hub, (running|suspended), "
                     rf"parent {hexid}, in thread #\d+(, its frames are its thread's)?\)$",
                     found.text, re.MULTILINE)
    spawned = re.findall(rf"^Spawned by {hexid} at:\n\n(?:.*\n    `.*`\n\n)*?"
                         r".*:\d+ in spawn_gevent_greenlets\n", found.text, re.MULTILINE)
    assert len(spawned) == 3


# -- 3. grouped stacks -------------------------------------------------------------


def test_ten_thousand_greenlets_in_three_places_group_into_a_small_report(
        report_service, tmp_path: Path) -> None:
    args = ("--greenlets", "10000", "--places", "3")
    found = both_formats(report_service, tmp_path, *args, options="group_stacks = true")

    for rendered in (found.text, found.json_text):
        assert len(rendered.encode()) < 64 * 1024
    groups = [group for group in section(found.json, "greenlets")
              if group["frames"] and functions(group["frames"])[-1].startswith("parked_")]
    assert sorted(group["count"] for group in groups) == [3333, 3333, 3334]
    assert sorted(functions(group["frames"])[-1] for group in groups) == [
        "parked_elsewhere", "parked_in_a_third_place", "parked_in_named_function"]
    assert all(len(group["members"]) == 20 for group in groups)

    counts = re.findall(r"-+ +(\d+) Green Threads with this stack +-+", found.text)
    assert sorted(int(count) for count in counts)[-3:] == [3333, 3333, 3334]
    assert found.text.count("  ... and 3313 more\n") == 2
    assert found.text.count("  ... and 3314 more\n") == 1


def test_the_default_lists_every_greenlet_as_oslo_reports_does(
        report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--greenlets", "10000", "--places", "3",
                         conf=f"[oslo_reports]\nlog_dir = {logs}\n")
    text = next_report(svc, logs).read_text()
    listed = sum(text.count(f" in {place}\n") for place in
                 ("parked_in_named_function", "parked_elsewhere", "parked_in_a_third_place"))
    assert listed == 10_000
    assert "with this stack" not in text


# -- 5. credentials and the environment ----------------------------------------------

SECRETS = ["s3cret", "hunter2", "t0psecret", "env-secret-value", "env-url-password"]


def test_credentials_and_environment_never_shown(report_service, tmp_path: Path) -> None:
    env = {
        "GMR_TEST_API_TOKEN": "env-secret-value",
        "GMR_TEST_SHOWN": "visible-value",
        "GMR_TEST_SHOWN_URL": "amqp://guest:env-url-password@rabbit/",
    }
    found = both_formats(
        report_service, tmp_path, "--upstream", "https://svc:t0psecret@upstream.example/api",
        options="environment_allowlist = GMR_TEST_SHOWN,GMR_TEST_SHOWN_URL,GMR_TEST_UNSET",
        conf="[app]\nconnection = mysql+pymysql://nova:s3cret@db/nova\n"
             "dsn = password=hunter2;host=x\n",
        env=env)

    for rendered in (found.text, found.json_text):
        for secret in SECRETS:
            assert secret not in rendered
        assert "GMR_TEST_API_TOKEN" not in rendered
    app = section(found.json, "configuration")["app"]
    assert app["connection"] == "mysql+pymysql://nova:***@db/nova"
    assert app["dsn"] == "password=***;host=x"
    assert app["api_token"] == "***"
    processes = section(found.json, "processes")
    assert "https://svc:***@upstream.example/api" in processes["process"]["cmdline"]
    assert "https://svc:***@upstream.example/api" in found.json["header"]["program"]
    assert processes["environment"] == {"GMR_TEST_SHOWN": "visible-value",
                                        "GMR_TEST_SHOWN_URL": "amqp://guest:***@rabbit/"}

    assert "  connection = mysql+pymysql://nova:***@db/nova\n" in found.text
    assert "  dsn = password=***;host=x\n" in found.text
    assert "--upstream https://svc:***@upstream.example/api" in found.text
    assert "environment = \n  GMR_TEST_SHOWN = visible-value\n" in found.text


# -- 6. asyncio ------------------------------------------------------------------------


def test_asyncio_tasks_of_a_loop_in_main_and_one_in_a_thread(
        report_service, tmp_path: Path) -> None:
    found = both_formats(report_service, tmp_path, "--asyncio")

    tasks = {task["name"]: task for task in section(found.json, "tasks")}
    waiters = {name: task for name, task in tasks.items() if "-waiter-" in name}
    assert sorted(waiters) == ["main-waiter-0", "main-waiter-1",
                               "thread-waiter-0", "thread-waiter-1"]
    for task in waiters.values():
        assert task["state"] == "pending"
        # Qualified names from 3.11 on (Event.wait), plain ones before.
        assert [name.split(".")[-1] for name in functions(task["frames"])][:2] == [
            "awaits_an_event", "wait"]
        assert task["frames"][0][3] == "await event.wait()"
    assert waiters["main-waiter-0"]["loop_id"] == tasks["main-server"]["loop_id"]
    assert waiters["main-waiter-0"]["loop_id"] != waiters["thread-waiter-0"]["loop_id"]

    for name in waiters:
        block = re.search(rf"-+ +Task {name} +-+\n\n\(pending, loop 0x[0-9a-f]+ <.*Loop "
                          r"running=True.*>\)\n\n.*:\d+ in awaits_an_event\n"
                          r"    `await event.wait\(\)`\n", found.text)
        assert block, name


def test_a_process_without_asyncio_does_not_import_it(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--asyncio-probe", "--log-dir", str(logs))
    first = next_report(svc, logs).read_text()
    second = next_report(svc, logs).read_text()  # made after a whole report was
    assert "Asyncio Tasks" not in first
    assert "\nasyncio = False\n" in first and "\nasyncio = False\n" in second


# -- 7. retention -----------------------------------------------------------------------


def test_max_reports_keeps_the_three_newest(report_service, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    svc = report_service("--service-name", "svc",
                         conf=f"[oslo_reports]\nlog_dir = {logs}\nmax_reports = 3\n")
    written = [next_report(svc, logs).name for _ in range(5)]
    assert len(set(written)) == 5
    assert [path.name for path in reports(logs)] == sorted(written[-3:])
    assert svc.alive()
