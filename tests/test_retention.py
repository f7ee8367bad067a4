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
