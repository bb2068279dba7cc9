"""``redact`` and ``safe_error_text`` hide a DSN's password whatever characters it holds."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from airflow_aurora_wake.core.errors import redact, redact_dsn, safe_error_text

PASSWORD_CHARACTERS = string.ascii_letters + string.digits + "@ /:#?!%&=+;,'\"$*~"
PASSWORDS = st.text(PASSWORD_CHARACTERS, min_size=1, max_size=24).map(lambda text: f"Zq{text}Zq")


def test_a_password_holding_at_signs_spaces_slashes_and_colons_is_hidden_whole() -> None:
    for password in ("Pa@ssw0rd", "S3cret word", "a/b:c@d e"):
        text = f"could not connect to postgresql://etl:{password}@db.example:5432/sales: refused"
        assert redact(text) == "could not connect to postgresql://etl:***@db.example:5432/sales: refused"


def test_a_dsn_without_a_password_is_left_as_it_is() -> None:
    text = "connect postgresql://etl@db.example:5432/sales failed"
    assert redact(text) == text


def test_redact_dsn_hides_all_of_the_user_info() -> None:
    assert redact_dsn("postgresql://etl:S3cret word@host:5432x/db") == "postgresql://***@host:5432x/db"
    assert redact_dsn("postgresql://etl:Pa@ssw0rd@host/db") == "postgresql://***@host/db"
    assert redact_dsn("etl:pw@host") == "***@host"
    assert redact_dsn("postgresql://host:5432x/db") == "postgresql://host:5432x/db"


def test_safe_error_text_redacts_before_it_shortens() -> None:
    # Cut first, the 300-character limit would fall inside the password, before its "@".
    message = "x" * 230 + " postgresql://etl:" + "p" * 40 + "@db/x"
    assert "ppp" not in safe_error_text(RuntimeError(message))


@given(scheme=st.sampled_from(["postgresql", "mysql+aiomysql"]), password=PASSWORDS)
def test_no_generated_password_survives_redact(scheme: str, password: str) -> None:
    text = f"error talking to {scheme}://etl:{password}@db.example:5432/sales (attempt 2)"
    cleaned = redact(text)
    assert password not in cleaned
    assert cleaned == f"error talking to {scheme}://etl:***@db.example:5432/sales (attempt 2)"
    assert password not in redact_dsn(f"{scheme}://etl:{password}@db.example:5432x/sales")
