"""Credentials inside ordinary values are masked."""

import pytest

from gmr.redact import redact, redact_argv


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("mysql+pymysql://nova:s3cr3t@db.example:3306/nova",
         "mysql+pymysql://nova:***@db.example:3306/nova"),
        ("rabbit://guest:guest@10.0.0.1:5672,guest:pw2@10.0.0.2:5672/",
         "rabbit://guest:***@10.0.0.1:5672,guest:***@10.0.0.2:5672/"),
        ("host=db user=nova password=hunter2 dbname=nova",
         "host=db user=nova password=*** dbname=nova"),
        ("Server=db;Uid=sa;Pwd=Passw0rd!;", "Server=db;Uid=sa;Pwd=***;"),
        ("token: abc.def.ghi", "token: ***"),
        ("http://example.org/path?q=1", "http://example.org/path?q=1"),
        ("no secrets here", "no secrets here"),
        ("", ""),
    ],
)
def test_redact(given: str, expected: str) -> None:
    assert redact(given) == expected


def test_redact_argv() -> None:
    argv = ["nova-api", "--password", "hunter2", "--token=abc", "--db",
            "postgresql://u:p@h/db", "--verbose"]
    assert redact_argv(argv) == ["nova-api", "--password", "***", "--token=***", "--db",
                                 "postgresql://u:***@h/db", "--verbose"]
