"""``parse_dsn`` never shows any part of a DSN's user-info, whatever the DSN looks like."""

from __future__ import annotations

import string
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_aurora_wake.core.dsn import parse_dsn
from airflow_aurora_wake.core.errors import InvalidParameterError

#: Characters users put in passwords without percent-encoding them, URL delimiters included.
PASSWORD_CHARACTERS = string.ascii_letters + string.digits + "@ /:#?!%&=+;,'\"$*~"
#: Wrapped in a marker no message holds, so a coincidental substring cannot pass for a leak.
PASSWORDS = st.text(PASSWORD_CHARACTERS, min_size=1, max_size=24).map(lambda text: f"Zq{text}Zq")
#: What follows the user-info: valid, or malformed in the ways that make urlsplit fail.
AFTER_USERINFO = st.sampled_from(
    ["host:5432/db", "host:5432x/db", "host:99999/db", "host/db/extra", "host", "", ":5432/db"]
)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://etl:S3cret word@host:5432x/db", "postgresql://***@host:5432x/db"),
        ("postgresql://etl:Pa@ssw0rd@host:5432x/db", "postgresql://***@host:5432x/db"),
        ("mysql://etl:pa/ss@host/db", "mysql://***@host/db"),
        ("oracle://etl:hunter2@db/sales", "oracle://***@db/sales"),
        ("etl:hunter2@db/sales", "***@db/sales"),
    ],
)
def test_a_malformed_dsn_is_shown_without_its_user_info(dsn: str, shown: str) -> None:
    with pytest.raises(InvalidParameterError) as error:
        parse_dsn(dsn)
    assert f"dsn={shown!r}" in str(error.value)
    assert error.value.value == shown


def test_a_password_cut_by_a_slash_is_refused_not_read_as_a_database() -> None:
    # urlsplit reads host "etl", port 5432 and database "ss@host": the password's tail would be
    # shown wherever the database is.
    with pytest.raises(InvalidParameterError, match="percent-encode") as error:
        parse_dsn("postgresql://etl:5432/ss@host")
    assert "5432/ss" not in str(error.value)
    with pytest.raises(InvalidParameterError, match="percent-encode"):
        parse_dsn("postgresql://etl:5432?ss@host/db")
    assert parse_dsn("postgresql://etl:5432%2Fss@host/db").password == "5432/ss"


@given(scheme=st.sampled_from(["postgresql", "mysql", "oracle"]), password=PASSWORDS, rest=AFTER_USERINFO)
def test_no_password_ever_appears_in_the_error_or_elsewhere(scheme: str, password: str, rest: str) -> None:
    dsn = f"{scheme}://etl:{password}@{rest}"
    try:
        parsed = parse_dsn(dsn)
    except InvalidParameterError as exc:
        assert password not in str(exc)
        assert str(exc).startswith(f"invalid dsn={f'{scheme}://***@{rest}'!r}")
    else:
        # Parsed: the password went whole into its field, and nowhere else.
        assert parsed.password == unquote(password)
        assert password not in repr(parsed)
        assert all(password not in str(part) for part in (parsed.user, parsed.host, parsed.database))
