"""Every flag of ``airflow-aurora-wake wait`` with bad input: exit 2 with a clear message, no I/O.

Values argparse can type-check (``--timeout abc``, an unknown ``--probe``) are refused by
argparse naming the flag; the others are refused by the core's validation, and the message
names the flag (``--timeout``, not ``timeout``). Nothing is called or connected first (the
emulator's counters), the one JSON line on stdout says ``ready: false``, a password never
shows, and nothing printed speaks of Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from caller_words import airflow_words_in

from airflow_aurora_wake.cli import main
from airflow_aurora_wake.core.cli import EXIT_MISCONFIGURED

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

DSN = "postgresql://app@/test"
PASSWORD = "cli-secret-pw-4410"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec

    with AuroraEmulator([ClusterSpec("sales")]) as emu:
        yield emu


@pytest.fixture
def cli(emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``airflow-aurora-wake wait ...`` in process against the emulator; (status, out, err)."""
    for name, value in emulator.aws_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AURORA_WAKE_TEST_PW", PASSWORD)

    def run(*argv: str) -> tuple[int, str, str]:
        counters = emulator.counters()
        before = sum(counters["rds_calls"].values()), sum(counters["connection_attempts"].values())
        try:
            endpoint = () if "--endpoint-url" in argv else ("--endpoint-url", emulator.endpoint_url)
            status = main(["wait", *argv, *endpoint])
        except SystemExit as exit_:  # argparse refuses the value
            status = int(exit_.code or 0)
        out, err = capsys.readouterr()
        counters = emulator.counters()
        after = sum(counters["rds_calls"].values()), sum(counters["connection_attempts"].values())
        assert after == before, "the CLI called AWS or connected before refusing its input"
        assert PASSWORD not in out + err
        assert airflow_words_in(out + err) == [], out + err
        return status, out, err

    return run


# argparse's own checks: exit 2, "argument --flag: invalid ..." on stderr.
ARGPARSE = [
    ("--timeout", "abc"),
    ("--timeout", ""),
    ("--connect-timeout", "1s"),
    ("--describe-interval", "ten"),
    ("--probe", "http"),
    ("--probe", ""),
    ("--ssl", "bogus"),
]


@pytest.mark.parametrize(("flag", "value"), ARGPARSE, ids=[f"{f}={v!r}" for f, v in ARGPARSE])
def test_argparse_refuses_the_type(cli: Any, flag: str, value: str) -> None:
    status, _, err = cli("sales", "--dsn", DSN, flag, value)
    assert status == EXIT_MISCONFIGURED
    assert f"argument {flag}" in err and "invalid" in err


# The core's validation: exit 2, one JSON line naming the flag.
CORE = [
    (("", "--dsn", DSN), "CLUSTER"),
    (("  ", "--dsn", DSN), "CLUSTER"),
    ((" sales", "--dsn", DSN), "CLUSTER"),
    (("arn:aws:rds:us-east-1:123456789012:db:sales", "--dsn", DSN), "CLUSTER"),
    (("None", "--dsn", DSN, "--region", "None"), "--region"),
    (("sales", "--dsn", DSN, "--region", ""), "--region"),
    (("sales", "--dsn", DSN, "--region", "us east 1"), "--region"),
    (("arn:aws:rds:us-east-1:123456789012:cluster:sales", "--dsn", DSN, "--region", "eu-west-1"), "--region"),
    (("sales", "--dsn", DSN, "--endpoint-url", "localhost:5000"), "--endpoint-url"),
    (("sales", "--dsn", ""), "--dsn"),
    (("sales", "--dsn", " "), "--dsn"),
    (("sales", "--dsn", "oracle://app@db/x"), "--dsn"),
    (("sales", "--dsn", "postgresql://app@db:notaport/x"), "--dsn"),
    (("sales",), "--dsn (its USER)"),
    (("sales", "--dsn", "postgresql:///test"), "--dsn (its USER)"),
    (("sales", "--dsn", DSN, "--database", ""), "--database"),
    (("sales", "--dsn", DSN, "--database", " x"), "--database"),
    (("sales", "--dsn", DSN, "--data-api-secret-arn", ""), "--data-api-secret-arn"),
    (("sales", "--dsn", DSN, "--data-api-secret-arn", "login"), "--data-api-secret-arn"),
    (("sales", "--dsn", DSN, "--timeout", "0"), "--timeout"),
    (("sales", "--dsn", DSN, "--timeout", "-5"), "--timeout"),
    (("sales", "--dsn", DSN, "--timeout", "nan"), "--timeout"),
    (("sales", "--dsn", DSN, "--timeout", "inf"), "--timeout"),
    (("sales", "--dsn", DSN, "--connect-timeout", "0"), "--connect-timeout"),
    (("sales", "--dsn", DSN, "--describe-interval", "-1"), "--describe-interval"),
    (("sales", "--dsn", DSN, "--password-env", "AURORA_WAKE_NO_SUCH_VARIABLE"), "--password-env"),
    (("sales", "--dsn", DSN, "--iam", "--password-env", "AURORA_WAKE_TEST_PW"), "--password-env"),
]


@pytest.mark.parametrize(("argv", "flag"), CORE, ids=[" ".join(argv) or "empty" for argv, _ in CORE])
def test_core_validation_names_the_flag(cli: Any, argv: tuple[str, ...], flag: str) -> None:
    status, out, err = cli(*argv)
    assert status == EXIT_MISCONFIGURED, (status, out, err)
    result = json.loads(out)
    assert result["ready"] is False and result["error"] == "InvalidParameterError", result
    assert result["message"].startswith(f"invalid {flag}="), result["message"]
    assert result["message"] in err  # progress on stderr says the same


def test_password_in_the_dsn_is_refused_without_echoing_it(cli: Any) -> None:
    status, out, _ = cli("sales", "--dsn", f"postgresql://app:{PASSWORD}@db/x")
    assert status == EXIT_MISCONFIGURED
    assert "--password-env" in json.loads(out)["message"]


def test_database_flag_is_used_with_a_dsn(cli: Any) -> None:
    # It used to be dropped silently when --dsn was given; a bad one is now refused by name.
    status, out, _ = cli("sales", "--dsn", "postgresql://app@/test", "--database", "\tx")
    assert status == EXIT_MISCONFIGURED and json.loads(out)["message"].startswith("invalid --database=")
