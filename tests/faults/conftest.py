"""Fixtures of the fault suite: the logins every scenario runs with, and the secrets sweep.

Every scenario of ``tests/faults`` runs once per login:

- ``postgresql``: the ``aurora_wake_pw`` login, whose password PostgreSQL really checks (scram);
- ``mysql``: the same login on MariaDB (``mysql_native_password``, really checked);
- ``postgresql-iam``: an IAM login (``iam: true`` in the connection's extra): every probe gets a
  fresh IAM token from aiobotocore's ``generate_db_auth_token`` (a real SigV4 presigned URL
  signed with the emulator's credentials). The emulated endpoint does not check IAM tokens; the
  upstream trusts ``postgres`` on 127.0.0.1, so these waits succeed while the token still goes
  through every layer that could leak it. The connection's password field holds the known
  password too, which the IAM path must ignore and never show.

The autouse ``secret_guard`` then sweeps everything the scenario exposed for the known password
and every IAM token (and its signature): every log record at DEBUG (root logger, and Airflow's
structlog task/trigger loggers, which render to stdout), stdout/stderr, and every value the test
hands to ``guard.add`` (XCom values, trigger kwargs as Airflow stores them, event payloads,
exception messages and tracebacks, CLI output).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import airflow_support  # noqa: F401  -- must come first: it sets AIRFLOW_HOME and friends
import pytest
from airflow_support import *  # noqa: F403  -- the shared fixtures (emulated, ...)
from faults_support import LOGINS, Login, SecretGuard


def _record_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    for record in records:
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.append("".join(traceback.format_exception(record.exc_info[1])))
        if record.exc_text:
            texts.append(record.exc_text)
    return texts


@pytest.fixture(params=sorted(LOGINS), ids=sorted(LOGINS))
def login(request: pytest.FixtureRequest, password_login: Any, secret_guard: SecretGuard) -> Iterator[Login]:
    """The login a scenario runs with (see the module docstring)."""
    chosen = LOGINS[request.param].with_password(password_login)
    yield chosen
    if chosen.iam and secret_guard.expect_tokens:
        # The IAM scenario really sent tokens (so the sweep really looked for them).
        assert secret_guard.tokens, "IAM login, but no IAM token was generated"
        assert all("X-Amz-Signature=" in token for token in secret_guard.tokens)


@pytest.fixture(autouse=True)
def secret_guard(
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SecretGuard]:
    """Watch the known password and every IAM token; fail the test if one shows anywhere."""
    import airflow._shared.logging.structlog as airflow_structlog

    from airflow_aurora_wake.core import targets

    guard = SecretGuard()
    guard.watch(request.getfixturevalue("password_login").password)

    # Everything at DEBUG: stdlib loggers (caplog on the root logger) and Airflow's structlog
    # loggers (task and trigger loggers created from now on), which render to stdout.
    caplog.set_level(logging.DEBUG)
    levels = airflow_structlog.PER_LOGGER_LEVELS
    previous_root_level = levels[""]
    levels[""] = logging.DEBUG

    # Every IAM token handed to a probe is recorded and watched: every path makes its tokens
    # through core.targets.iam_token_provider.
    def spy_on(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def provider(*args: Any, **kwargs: Any) -> Callable[[], Awaitable[str]]:
            provide = original(*args, **kwargs)

            async def provide_and_watch() -> str:
                token: str = await provide()
                guard.watch_token(token)
                return token

            return provide_and_watch

        monkeypatch.setattr(owner, name, provider)

    spy_on(targets, "iam_token_provider")
    try:
        yield guard
    finally:
        levels[""] = previous_root_level
    captured = capsys.readouterr()
    leaks = guard.leaks([captured.out, captured.err, caplog.text, *_record_texts(caplog.records)])
    assert not leaks, f"{len(leaks)} secret leak(s), for example: {leaks[:3]}"
