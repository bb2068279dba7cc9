"""``airflow-aurora-wake wait CLUSTER ...``: wake a cluster and wait for a real connection.

Progress goes to stderr, one JSON result line to stdout. Exit status: 0 ready, 1 timeout,
2 misconfiguration (or any error waiting cannot fix). The password never comes from a flag
value (it would show in ``ps`` and shell history): it comes from ``--password-env VAR``, or
``PGPASSWORD`` / ``MYSQL_PWD``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from airflow_aurora_wake.core.dsn import parse_dsn
from airflow_aurora_wake.core.engines import PASSWORD_ENV, SSL_MODES
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    InvalidParameterError,
    ReadyTimeoutError,
    TransientError,
)
from airflow_aurora_wake.core.validation import INSTANCES

__all__ = ["EXIT_MISCONFIGURED", "EXIT_READY", "EXIT_TIMEOUT", "add_wait_parser", "run_wait"]

EXIT_READY = 0
EXIT_TIMEOUT = 1
EXIT_MISCONFIGURED = 2


def add_wait_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``wait`` sub-command.

    :param subparsers: the object returned by ``ArgumentParser.add_subparsers()``.
    :returns: the sub-command's parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "wait",
        help="wake an Aurora cluster and wait until a real database connection succeeds",
        description=(
            "Wake an Aurora cluster (v2 auto-pause, v1, stopped) and wait until SELECT 1 runs. "
            "Prints progress to stderr and one JSON line to stdout. Exit 0 ready, 1 timeout (or AWS "
            "trouble that may pass), "
            "2 misconfiguration."
        ),
    )
    parser.add_argument("cluster", help="DB cluster identifier or ARN")
    parser.add_argument(
        "--region", dest="region_name", default=None, help="AWS region (default: the environment's)"
    )
    parser.add_argument("--endpoint-url", default=None, help="RDS endpoint URL (emulator, VPC endpoint)")
    parser.add_argument(
        "--dsn",
        default=None,
        help="postgresql://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB; leave out HOST:PORT to use "
        "the cluster's writer endpoint. No password here.",
    )
    parser.add_argument(
        "--password-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the password (default: PGPASSWORD or MYSQL_PWD)",
    )
    parser.add_argument("--probe", choices=["connection", "data-api"], default="connection")
    parser.add_argument(
        "--instances",
        choices=INSTANCES,
        default="writer",
        help="what must answer: writer (the cluster endpoint, default), reader (the reader endpoint) "
        "or all (every DB instance, each through its own endpoint; needs rds:DescribeDBInstances)",
    )
    parser.add_argument("--data-api-secret-arn", default=None, help="secret ARN for --probe data-api")
    parser.add_argument("--database", default=None, help="database for --probe data-api")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds for wake and wait (default 600)"
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=30.0, help="seconds per attempt (default 30)"
    )
    parser.add_argument("--describe-interval", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--no-wake", action="store_true", help="only wait; send no wake request")
    parser.add_argument("--no-start", action="store_true", help="fail instead of starting a stopped cluster")
    parser.add_argument("--iam", action="store_true", help="use IAM database authentication tokens")
    parser.add_argument(
        "--ssl",
        default=None,
        choices=SSL_MODES,
        help="TLS mode for the database connection",
    )
    parser.set_defaults(handler=run_wait)
    return parser


#: The parameters of wake_and_wait that a flag of the same name (its argparse dest) sets as given.
_PASSED_AS_IS = (
    "region_name",
    "endpoint_url",
    "dsn",
    "database",
    "iam",
    "ssl",
    "probe",
    "instances",
    "data_api_secret_arn",
    "timeout",
    "connect_timeout",
    "describe_interval",
)

#: The flag (or argument) that sets each parameter of wake_and_wait, for error messages.
_FLAGS = {
    "db_cluster_identifier": "CLUSTER",
    "region_name": "--region",
    "endpoint_url": "--endpoint-url",
    "dsn": "--dsn",
    "user": "--dsn (its USER)",
    "password": "--password-env",
    "database": "--database",
    "probe": "--probe",
    "instances": "--instances",
    "data_api_secret_arn": "--data-api-secret-arn",
    "timeout": "--timeout",
    "connect_timeout": "--connect-timeout",
    "describe_interval": "--describe-interval",
    "ssl": "--ssl",
}


def _with_flag_names(exc: AuroraWakeError) -> AuroraWakeError:
    """Name the command-line flag instead of the Python parameter in a parameter error."""
    if isinstance(exc, InvalidParameterError) and exc.parameter in _FLAGS:
        return InvalidParameterError(_FLAGS[exc.parameter], exc.value, exc.fix)
    return exc


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, sort_keys=True), flush=True)


def _progress(message: str) -> None:
    print(f"airflow-aurora-wake: {message}", file=sys.stderr, flush=True)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_env:
        if args.password_env not in os.environ:
            raise InvalidParameterError(
                "--password-env", args.password_env, "that environment variable is not set"
            )
        return os.environ[args.password_env]
    if args.dsn is None:
        return None
    engine = parse_dsn(args.dsn).engine
    return os.environ.get(PASSWORD_ENV[engine]) or None


def run_wait(args: argparse.Namespace) -> int:
    """Run the ``wait`` sub-command.

    :param args: the parsed arguments.
    :returns: the exit status (0 ready, 1 timeout, 2 misconfiguration).
    """
    from airflow_aurora_wake.core.api import wake_and_wait

    try:
        if args.dsn is not None and parse_dsn(args.dsn).password is not None:
            raise InvalidParameterError(
                "--dsn",
                parse_dsn(args.dsn),
                "do not put the password in --dsn (it shows in ps and shell history): "
                "use --password-env VAR, PGPASSWORD or MYSQL_PWD",
            )
        if args.iam and args.password_env:
            raise InvalidParameterError(
                "--password-env",
                args.password_env,
                "--iam logs in with IAM tokens, not a password: give either --iam or --password-env",
            )
        password = None if args.iam else _password(args)
        # --database wins over the dsn's database (wake_and_wait's rule for database=).
        parameters: dict[str, Any] = {name: getattr(args, name) for name in _PASSED_AS_IS}
        report = asyncio.run(
            wake_and_wait(
                args.cluster,
                password=password,
                wake=not args.no_wake,
                start_if_stopped=not args.no_start,
                log=_progress,
                **parameters,
            )
        )
    except (ReadyTimeoutError, TransientError) as exc:
        # Not ready in time, or AWS kept failing in a way that may pass: exit 1, as for a timeout.
        kind = "timeout" if isinstance(exc, ReadyTimeoutError) else "transient"
        _progress(str(exc))
        _emit({"ready": False, "db_cluster_identifier": args.cluster, "error": kind, "message": str(exc)})
        return EXIT_TIMEOUT
    except AuroraWakeError as exc:
        exc = _with_flag_names(exc)
        _progress(str(exc))
        _emit(
            {
                "ready": False,
                "db_cluster_identifier": args.cluster,
                "error": type(exc).__name__,
                "message": str(exc),
            }
        )
        return EXIT_MISCONFIGURED
    _emit({"ready": True, "db_cluster_identifier": report.db_cluster_identifier, **report.as_xcom()})
    return EXIT_READY
