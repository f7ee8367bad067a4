"""What the report costs after the capture, and the whole report next to
oslo.reports' on the same workload, in the same process.

- ``test_format``: building the report model from one snapshot and rendering
  it (text, JSON, compact JSON). This runs in the watcher thread, off the
  service's threads, but it shares the GIL and the CPU with them.
- ``test_report_gmr`` / ``test_report_oslo``: ``TextGuruMeditation("1.0").run()``
  of each, capture included: every thread and greenlet, the processes and
  the configuration (C options in a group of their own).

Steady state: frames already resolved by an earlier round stay resolved (the
cache of one report serves the next), as in a service that reports twice.
The fresh-process figure, signal to file, is compare.py's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import pytest

from conftest import ParkedGreenlets, ParkedThreads

slow = pytest.mark.slow

#: name: (threads, depth, greenlets, heap objects)
WORKLOADS = {
    "tiny": (2, 5, 10, 0),
    "base-heap1e5": (10, 30, 1_000, 100_000),
    "base-heap1e6": (10, 30, 1_000, 1_000_000),
    "T100": (100, 30, 1_000, 100_000),
    "G10000": (10, 30, 10_000, 100_000),
}
SLOW = {"base-heap1e6", "T100", "G10000"}
OPTIONS = 100


def _params() -> list[Any]:
    return [pytest.param(name, id=name, marks=[slow] if name in SLOW else [])
            for name in WORKLOADS]


@pytest.fixture(scope="module")
def conf() -> Any:
    """oslo.config's global CONF (both reporters read it) with OPTIONS
    options of a group of their own."""
    from oslo_config import cfg

    conf = cfg.CONF
    if "bench" not in conf:
        conf.register_opts([cfg.StrOpt(f"bench_option_{n:05d}", default=f"value-{n}")
                            for n in range(OPTIONS)], group="bench")
    conf([], project="bench")
    return conf


@pytest.fixture
def workload(request: pytest.FixtureRequest, parked_threads: Callable[..., ParkedThreads],
             parked_greenlets: Callable[..., ParkedGreenlets],
             heap: Callable[[int], int]) -> str:
    name: str = request.param
    threads, depth, greenlets, heap_size = WORKLOADS[name]
    parked_threads(threads, depth)
    parked_greenlets(greenlets)
    heap(heap_size)
    return name


def _pedantic(benchmark: Any, run: Callable[[], Any], rounds: int) -> Any:
    results: list[Any] = []
    benchmark.pedantic(lambda: results.append(run()), rounds=rounds, iterations=1,
                       warmup_rounds=1)
    return results[-1]


@pytest.mark.parametrize("form", ["text", "json", "json-compact"])
@pytest.mark.parametrize("workload", _params(), indirect=True)
def test_format(benchmark: Any, workload: str, form: str, conf: Any) -> None:
    from gmr import render, report, snapshot

    captured = snapshot.take()
    benchmark.group = f"format {workload}"
    text = _pedantic(benchmark, lambda: render.render(
        report.build(captured, "1.0", conf, [], report.Options()), form), rounds=15)
    benchmark.extra_info.update(bytes=len(text), greenlets=len(captured.greenlets),
                                pause_ms=captured.pause_ns / 1e6)
    assert "gmr_bench_park_thread" in text
    if WORKLOADS[workload][2]:
        assert "gmr_bench_park_greenlet" in text


@pytest.mark.parametrize("workload", _params(), indirect=True)
def test_report_gmr(benchmark: Any, workload: str, conf: Any) -> None:
    import gmr

    pauses: list[float] = []

    def run() -> str:
        text = gmr.TextGuruMeditation("1.0").run()
        # The pause the report states about itself.
        pauses.append(float(text.split("gil held by capture = ", 1)[1].split()[0]))
        return text

    benchmark.group = f"report {workload}"
    text = _pedantic(benchmark, run, rounds=15)
    benchmark.extra_info.update(reporter="gmr", bytes=len(text),
                                pause_ms_median=statistics.median(pauses))
    assert text.count("gmr_bench_park_thread") >= WORKLOADS[workload][0]
    assert "bench_option_00000" in text


@pytest.mark.parametrize("workload", _params(), indirect=True)
def test_report_oslo(benchmark: Any, workload: str, conf: Any) -> None:
    guru = pytest.importorskip("oslo_reports.guru_meditation_report")
    benchmark.group = f"report {workload}"
    text = str(_pedantic(benchmark, lambda: guru.TextGuruMeditation("1.0").run(),
                         rounds=3 if workload in SLOW else 5))
    benchmark.extra_info.update(reporter="oslo.reports", bytes=len(text))
    assert text.count("gmr_bench_park_thread") >= WORKLOADS[workload][0]
