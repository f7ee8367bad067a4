"""Credentials inside ordinary values are masked."""

import pytest

from gmr.redact import redact, redact_argv, redact_environment, redact_text, redact_value


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


# Every form of issue 13, item 8: (text, what must not survive, what must survive).
FORMS = [
    ("DB_PASSWORD=hunter2 DB_HOST=db", "hunter2", ["DB_PASSWORD=", "DB_HOST=db"]),
    ("export PGPASSWORD=hunter2; psql", "hunter2", ["export PGPASSWORD=", "; psql"]),
    ("grant_type=x&client_secret=hunter2&scope=all", "hunter2",
     ["grant_type=x&client_secret=", "&scope=all"]),
    ("aws_secret_access_key=wJalr/K7MDENG+bPxRfi region=eu", "wJalr",
     ["aws_secret_access_key=", "region=eu"]),
    ("MYSQL_PWD=hunter2 mysql -u root", "hunter2", ["MYSQL_PWD=", "mysql -u root"]),
    ('password="hunter two" user="nova"', "hunter two", ['password="', 'user="nova"']),
    ("password='hunter2', user='nova'", "hunter2", ["password='", "user='nova'"]),
    ('{"password": "hunter2", "user": "nova"}', "hunter2", ['"password": "', '"user": "nova"}']),
    ("{'password': 'hunter2', 'user': 'nova'}", "hunter2", ["{'password': '", "'user': 'nova'}"]),
    ("user=nova pass=hunter2 host=db", "hunter2", ["user=nova pass=", "host=db"]),
    ("Authorization: Bearer eyJhbGciOi.eyJzdWIi.SflKxw next", "eyJhbGciOi",
     ["Authorization: Bearer ", " next"]),
    ("Authorization: Basic dXNlcjpodW50ZXIy next", "dXNlcjpodW50ZXIy",
     ["Authorization: Basic ", " next"]),
    ("mysql://user:p@ss@host/db", "p@ss", ["mysql://user:", "@host/db"]),
    ("rabbit://u:p@w@h1:5672,u:q@w@h2:5672/v", "@w@", ["rabbit://u:", "@h1:5672,u:", "@h2:5672/v"]),
    ("nova-api --os-password hunter2 --debug", "hunter2", ["nova-api --os-password ", " --debug"]),
    ("nova-api --db-password=hunter2 --debug", "hunter2", ["nova-api --db-password=", " --debug"]),
    ("nova-api --auth-token hunter2 --debug", "hunter2", ["nova-api --auth-token ", " --debug"]),
    ("curl -H 'X-Auth-Token: hunter2' http://h/", "hunter2", ["curl -H 'X-Auth-Token: ", "' http://h/"]),
]


@pytest.mark.parametrize(("text", "hidden", "kept"), FORMS, ids=[form[0][:30] for form in FORMS])
def test_every_credential_form_is_masked(text: str, hidden: str, kept: list[str]) -> None:
    masked = redact_text(text)
    assert hidden not in masked
    assert "***" in masked
    for part in kept:
        assert part in masked
    assert redact_text(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize("text", ["bypass=yes compass=north", "password_file=/etc/nova/pw",
                                  "http://example.org/a:b@c", "Basic usage: run it"])
def test_what_is_not_a_credential_survives(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nova", "--os-password", "hunter2", "--debug"],
         ["nova", "--os-password", "***", "--debug"]),
        (["nova", "--db-password=hunter2"], ["nova", "--db-password=***"]),
        (["nova", "--auth-token", "hunter2", "x"], ["nova", "--auth-token", "***", "x"]),
        (["nova", "--password-file", "/etc/pw"], ["nova", "--password-file", "/etc/pw"]),
        (["nova", "mysql://u:p@ss@h/d"], ["nova", "mysql://u:***@h/d"]),
    ],
)
def test_argv_forms(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


def test_environment_and_nested_values() -> None:
    env = {"DB_PASSWORD": "hunter2", "PGPASSWORD": "hunter3", "MYSQL_PWD": "hunter4",
           "OS_AUTH_URL": "https://u:hunter5@keystone/v3", "PATH": "/usr/bin"}
    assert redact_environment(env) == {
        "DB_PASSWORD": "***", "PGPASSWORD": "***", "MYSQL_PWD": "***",
        "OS_AUTH_URL": "https://u:***@keystone/v3", "PATH": "/usr/bin"}
    value = {"password": "hunter2", "user": "nova", "more": [{"client_secret": "hunter3"},
                                                            "token=hunter4"]}
    assert redact_value(value) == {"password": "***", "user": "nova",
                                   "more": [{"client_secret": "***"}, "token=***"]}
