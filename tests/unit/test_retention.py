"""Retention: oldest reports go first; other files stay."""

import os
from pathlib import Path

from gmr.retention import prune


def _reports(directory: Path, count: int, size: int = 100) -> list[Path]:
    paths = []
    for n in range(count):
        path = directory / f"nova-api_gurumeditation_2026112300000{n}"
        path.write_bytes(b"x" * size)
        os.utime(path, ns=(n * 10**9, n * 10**9))
        paths.append(path)
    return paths


def test_max_reports_keeps_the_newest(tmp_path: Path) -> None:
    paths = _reports(tmp_path, 5)
    other = tmp_path / "nova-conductor_gurumeditation_20261123000000"
    other.write_text("another service")
    unrelated = tmp_path / "nova-api.log"
    unrelated.write_text("log")
    deleted = prune(tmp_path, "nova-api", max_reports=2)
    assert sorted(deleted) == sorted(paths[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [paths[3].name, paths[4].name, other.name, unrelated.name])


def test_max_bytes_deletes_oldest_until_under(tmp_path: Path) -> None:
    paths = _reports(tmp_path, 5, size=100)
    deleted = prune(tmp_path, "nova-api", max_bytes=250)
    assert sorted(deleted) == sorted(paths[:3])


def test_newest_report_kept_even_over_max_bytes(tmp_path: Path) -> None:
    paths = _reports(tmp_path, 2, size=1000)
    assert prune(tmp_path, "nova-api", max_bytes=10) == [paths[0]]
    assert paths[1].exists()


def test_no_limits_deletes_nothing(tmp_path: Path) -> None:
    _reports(tmp_path, 3)
    assert prune(tmp_path, "nova-api") == []
    assert len(list(tmp_path.iterdir())) == 3


_FUTURE = 4_000_000_000 * 10**9  # 2096, in ns


def test_future_mtimes_of_older_reports_never_delete_the_newest(tmp_path: Path) -> None:
    """Ordered by the names' UTC stamps: older files carrying a future
    modification time are still the oldest."""
    old = _reports(tmp_path, 4)
    for path in old:
        os.utime(path, ns=(_FUTURE, _FUTURE))
    newest = tmp_path / "nova-api_gurumeditation_20261124000000"
    newest.write_bytes(b"x" * 100)
    deleted = prune(tmp_path, "nova-api", max_reports=2)
    assert sorted(deleted) == sorted(old[:3])
    assert newest.exists() and old[3].exists()
    assert prune(tmp_path, "nova-api", max_bytes=50) == [old[3]]
    assert newest.exists()


def test_the_report_just_written_is_kept_whatever_its_name_says(tmp_path: Path) -> None:
    """Same second, or a clock stepped back: keep= is never deleted."""
    old = _reports(tmp_path, 3)
    for path in old:
        os.utime(path, ns=(_FUTURE, _FUTURE))
    just = tmp_path / "nova-api_gurumeditation_20261123000000.1"
    just.write_bytes(b"x" * 100)
    deleted = prune(tmp_path, "nova-api", max_reports=1, keep=str(just))
    assert sorted(deleted) == sorted(old)
    assert just.exists()


def test_only_names_gmr_gives_are_pruned(tmp_path: Path) -> None:
    old = _reports(tmp_path, 2)
    notes = tmp_path / "nova-api_gurumeditation_notes"
    notes.write_text("an operator's file")
    degraded = tmp_path / "nova-api_gurumeditation_20261123000000.77_degraded.2"
    degraded.write_text("degraded")
    os.utime(degraded, ns=(0, 0))
    deleted = prune(tmp_path, "nova-api", max_reports=1)
    assert sorted(deleted) == sorted([old[0], degraded])
    assert notes.exists() and old[1].exists()


def test_to_file_keeps_the_report_it_writes(tmp_path: Path) -> None:
    """Through the sink, with real files: older reports in the future."""
    from gmr.sinks import to_file

    old = _reports(tmp_path, 3)
    for path in old:
        os.utime(path, ns=(_FUTURE, _FUTURE))
    written = [Path(to_file(str(tmp_path), "nova-api", f"report {n}\n", max_reports=2))
               for n in range(3)]
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == sorted(p.name for p in written[1:])
    assert written[-1].read_text() == "report 2\n"
