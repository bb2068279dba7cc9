"""``airflow-aurora-wake emulator``: run the emulator as a process for a pipeline's own tests.

This module is imported when the top-level parser is built, so it must not import moto (or
anything heavy) at module level; the handler imports the emulator when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.emulator.config import (
    AFTER_RESUME_ERRORS,
    AURORA_ENGINES,
    DATA_API_RESUME_ANSWERS,
    ENGINES,
    KINDS,
    RESUME_ANSWERS,
    ClusterSpec,
    Faults,
    Timings,
    parse_upstream,
)
from airflow_aurora_wake.emulator.connections import (
    DEFAULT_AWS_CONN_ID,
    RENDERINGS,
    check_conn_id,
    render_connections,
)

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator.emulator import AuroraEmulator

DEFAULT_CLUSTER = "demo-pg:serverless-v2:aurora-postgresql"

_KIND_ALIASES = {"v1": "serverless-v1", "v2": "serverless-v2", **{kind: kind for kind in KINDS}}
_ENGINE_ALIASES = {
    "postgresql": "aurora-postgresql",
    "postgres": "aurora-postgresql",
    "pg": "aurora-postgresql",
    "mysql": "aurora-mysql",
    "mariadb": "aurora-mysql",
    **{engine: engine for engine in ENGINES},
}
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
CLUSTER_SYNTAX = (
    "NAME[:KIND[:ENGINE]][,upstream=DSN][,state=paused|available|stopped][,data-api=true|false]"
    "[,iam-auth=true|false][,min-capacity=N][,max-capacity=N][,seconds-until-auto-pause=N]"
    "[,region=R][,port=N][,resume-answer=A][,data-api-resume-answer=A]"
    "[,manage-master-user-password=true|false][,readers=TIER[/TIER...]]"
)


def parse_cluster(value: str) -> dict[str, Any]:
    """Parse one ``--cluster`` value into ``ClusterSpec`` keyword arguments.

    The region and the auto-pause default are filled in later from the other flags.

    :param value: for example ``"sales:serverless-v2:aurora-postgresql,data-api=true"``.
    :raises argparse.ArgumentTypeError: naming the value and the accepted syntax.
    """

    def fail(reason: str) -> argparse.ArgumentTypeError:
        return argparse.ArgumentTypeError(f"{value!r}: {reason}; expected {CLUSTER_SYNTAX}")

    pieces = value.split(",")
    head = pieces[0]
    options: list[str] = []
    for piece in pieces[1:]:
        # A DSN may contain commas: a piece without "=" continues the previous option.
        if "=" not in piece and options:
            options[-1] += "," + piece
        else:
            options.append(piece)
    names = head.split(":")
    if not names[0] or len(names) > 3:
        raise fail("give a cluster name, optionally followed by :KIND and :ENGINE")
    spec: dict[str, Any] = {"identifier": names[0]}
    if len(names) > 1:
        kind = _KIND_ALIASES.get(names[1].lower())
        if kind is None:
            raise fail(f"unknown kind {names[1]!r} (use {', '.join(KINDS)})")
        spec["kind"] = kind
    if len(names) > 2:
        engine = _ENGINE_ALIASES.get(names[2].lower())
        if engine is None:
            raise fail(f"unknown engine {names[2]!r} (use {', '.join(ENGINES)})")
        spec["engine"] = engine
    for option in options:
        key, sep, raw = option.partition("=")
        key = key.strip().lower().replace("_", "-")
        if not sep:
            raise fail(f"option {option!r} needs the form key=value")
        try:
            if key in ("upstream", "state", "region"):
                spec[key] = raw
            elif key in ("resume-answer", "data-api-resume-answer"):
                spec[key.replace("-", "_")] = raw
            elif key in ("data-api", "iam-auth", "manage-master-user-password"):
                if raw.lower() not in _BOOLEANS:
                    raise fail(f"{key} must be true or false, got {raw!r}")
                spec[key.replace("-", "_")] = _BOOLEANS[raw.lower()]
            elif key in ("min-capacity", "max-capacity"):
                spec[key.replace("-", "_")] = float(raw)
            elif key in ("seconds-until-auto-pause", "port"):
                spec[key.replace("-", "_")] = int(raw)
            elif key == "readers":
                # One reader per failover tier given: readers=1/2 is a tier-1 and a tier-2 reader.
                spec["readers"] = [{"promotion_tier": int(tier)} for tier in raw.split("/")]
            else:
                raise fail(f"unknown option {key!r}")
        except ValueError:
            raise fail(f"{key} must be a number, got {raw!r}") from None
    try:
        if "engine" not in spec and "upstream" in spec:
            # Without :ENGINE the upstream's scheme decides (mysql:// -> aurora-mysql).
            spec["engine"] = AURORA_ENGINES[parse_upstream(spec["upstream"]).engine]
        ClusterSpec(**spec)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return spec


def _number(minimum: float, *, maximum: float | None = None, integer: bool = False) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}; give {kind} >= {minimum}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; give a value {bounds}")
        return value

    return convert


_TIMING_FIELDS = tuple(item.name for item in dataclasses.fields(Timings))
#: The numeric flags besides the timings: flag, converter, default, metavar, help.
_NUMBER_FLAGS: tuple[tuple[str, Callable[[str], float], float | None, str, str], ...] = (
    (
        "--seconds-until-auto-pause",
        _number(0, integer=True),
        300,
        "SECONDS",
        "idle time before a cluster pauses again (default: 300)",
    ),
    (
        "--throttle-fraction",
        _number(0, maximum=1),
        0.0,
        "FRACTION",
        "fraction of RDS calls answered Throttling (default: 0)",
    ),
    (
        "--throttle-seconds",
        _number(0),
        None,
        "SECONDS",
        "throttle only during the first SECONDS (default: always)",
    ),
    (
        "--server-errors",
        _number(0, integer=True),
        0,
        "N",
        "answer the first N RDS calls with HTTP 500 InternalFailure",
    ),
)


def _conn_id(text: str) -> str:
    """``--aws-conn-id``'s converter: :func:`.connections.check_conn_id` in argparse's terms.

    :param text: the flag's value.
    """
    try:
        return check_conn_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_emulator_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``emulator`` sub-command.

    :param subparsers: the top-level parser's sub-parsers action.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "emulator",
        help="run the emulator of sleeping Aurora clusters (AWS endpoint + database endpoints)",
        description=(
            "Run an emulated AWS endpoint (RDS, RDS Data API, Secrets Manager) and one database "
            "endpoint per emulated cluster on 127.0.0.1. When ready, prints one JSON line with the "
            "endpoint URL and each cluster's host and port (with --print-connections, then Airflow "
            "connections for them); stops on SIGINT or SIGTERM."
        ),
    )
    parser.add_argument(
        "--cluster",
        action="append",
        type=parse_cluster,
        default=None,
        metavar="SPEC",
        help=f"an emulated cluster, repeatable: {CLUSTER_SYNTAX}. Default: {DEFAULT_CLUSTER} (paused)",
    )
    parser.add_argument(
        "--port",
        type=_number(0, maximum=65535, integer=True),
        default=0,
        help="port of the AWS endpoint (default: any free port)",
    )
    parser.add_argument("--region", default="us-east-1", help="default region (default: us-east-1)")
    defaults = Timings()
    for name in _TIMING_FIELDS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_number(0),
            default=getattr(defaults, name),
            metavar="SECONDS",
            help=f"default: {getattr(defaults, name):g}",
        )
    for flag, convert, default, metavar, text in _NUMBER_FLAGS:
        parser.add_argument(flag, type=convert, default=default, metavar=metavar, help=text)
    parser.add_argument(
        "--deny-action",
        action="append",
        default=[],
        metavar="ACTION",
        help="answer this action AccessDenied, repeatable (e.g. rds:StartDBCluster)",
    )
    parser.add_argument(
        "--after-resume-error",
        choices=AFTER_RESUME_ERRORS,
        default=None,
        help="database error for new connections right after a resume",
    )
    parser.add_argument(
        "--after-resume-seconds",
        type=_number(0),
        default=0.0,
        metavar="SECONDS",
        help="how long that error window lasts (default: 0)",
    )
    parser.add_argument(
        "--reset-during-resume",
        action="store_true",
        help="reset connections that arrive while a cluster resumes instead of holding them",
    )
    parser.add_argument(
        "--resume-answer",
        choices=RESUME_ANSWERS,
        default=None,
        help="what a connection attempt gets while a cluster resumes, for every cluster without its "
        "own resume-answer= (default: hold; pg-hba-refusal is PostgreSQL only)",
    )
    parser.add_argument(
        "--data-api-resume-answer",
        choices=DATA_API_RESUME_ANSWERS,
        default=None,
        help="what an rds-data call gets while a cluster resumes, for every cluster without its own "
        "data-api-resume-answer= (default: resuming, i.e. DatabaseResumingException)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the throttling random generator")
    parser.add_argument(
        "--print-connections",
        choices=RENDERINGS,
        default=None,
        help="after the JSON line, print Airflow connections for the AWS endpoint and each cluster: "
        "'airflow connections add' commands (airflow-cli) or 'export AIRFLOW_CONN_...' lines (env); "
        "the database connections have no password",
    )
    parser.add_argument(
        "--aws-conn-id",
        type=_conn_id,
        default=DEFAULT_AWS_CONN_ID,
        metavar="ID",
        help=f"id of the printed AWS connection (default: {DEFAULT_AWS_CONN_ID})",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (default: INFO)",
    )
    parser.set_defaults(handler=run_emulator)
    return parser


def _log_new_timeline_events(emu: AuroraEmulator, reported: dict[str, int]) -> None:
    """Log each cluster's timeline events not logged yet, so a user sees it pause and wake.

    :param emu: the running emulator.
    :param reported: identifier -> number of events already logged; updated in place.
    """
    logger = logging.getLogger(__name__)
    for ep in emu.clusters():
        events = emu.timeline(ep.identifier)
        for event in events[reported.get(ep.identifier, 0) :]:
            detail = ", ".join(f"{key}={value}" for key, value in sorted(event.detail.items()))
            logger.info(
                "%s: %s at %s%s",
                ep.identifier,
                event.event,
                time.strftime("%H:%M:%S", time.localtime(event.at)) + f".{int(event.at % 1 * 1000):03d}",
                f" ({detail})" if detail else "",
            )
        reported[ep.identifier] = len(events)


def run_emulator(args: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM; print the ready JSON line first.

    :param args: the parsed flags.
    """
    logging.basicConfig(
        level=getattr(logging, args.log_level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import moto.server  # noqa: F401  (probe the optional dependency)

        from airflow_aurora_wake.emulator.emulator import AuroraEmulator
    except ImportError as exc:
        print(
            f"the emulator needs moto ({exc}); install airflow-aurora-wake[emulator]",
            file=sys.stderr,
        )
        return 2
    timings = Timings(**{name: getattr(args, name) for name in _TIMING_FIELDS})
    faults = Faults(
        throttle_fraction=args.throttle_fraction,
        throttle_seconds=args.throttle_seconds,
        server_errors=int(args.server_errors),
        deny_actions=frozenset(args.deny_action),
        after_resume_error=args.after_resume_error,
        after_resume_seconds=args.after_resume_seconds,
        reset_during_resume=args.reset_during_resume,
        seed=args.seed,
    )
    answers = {
        name: value
        for name, value in (
            ("resume_answer", args.resume_answer),
            ("data_api_resume_answer", args.data_api_resume_answer),
        )
        if value is not None
    }
    specs = []
    for raw in args.cluster or [parse_cluster(DEFAULT_CLUSTER)]:
        values = {
            "region": args.region,
            "seconds_until_auto_pause": int(args.seconds_until_auto_pause),
            **answers,
            **raw,
        }
        try:
            specs.append(ClusterSpec(**values))
        except ValueError as exc:
            # A flag that applies to every cluster can clash with one (pg-hba-refusal on MySQL).
            print(f"airflow-aurora-wake emulator: {exc}", file=sys.stderr)
            return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        logging.getLogger(__name__).info("received signal %s, stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with AuroraEmulator(
            specs, timings=timings, faults=faults, region=args.region, port=int(args.port)
        ) as emu:
            ready = {
                "endpoint_url": emu.endpoint_url,
                "region": emu.region,
                "ca_file": emu.ca_file,
                "clusters": [
                    {
                        "identifier": ep.identifier,
                        "kind": ep.kind,
                        "engine": ep.engine,
                        "host": ep.host,
                        "port": ep.port,
                        "arn": ep.arn,
                        "reader_host": ep.reader_host,
                        "readers": [dataclasses.asdict(reader) for reader in emu.readers(ep.identifier)],
                    }
                    for ep in emu.clusters()
                ],
            }
            printed = json.dumps(ready) + "\n"
            if args.print_connections:
                try:
                    definitions = emu.connection_definitions(args.aws_conn_id)
                except ValueError as exc:  # two connections with one id
                    print(f"airflow-aurora-wake emulator: {exc}", file=sys.stderr)
                    return 2
                printed += render_connections(definitions, args.print_connections, ca_file=emu.ca_file)
            sys.stdout.write(printed)
            sys.stdout.flush()
            for ep in emu.clusters():
                logging.getLogger(__name__).info(
                    "%s (%s, %s): %s:%s, status %s",
                    ep.identifier,
                    ep.kind,
                    ep.engine,
                    ep.host,
                    ep.port,
                    emu.status(ep.identifier),
                )
            logging.getLogger(__name__).info("AWS endpoint %s; Ctrl-C or SIGTERM stops", emu.endpoint_url)
            reported: dict[str, int] = {}
            while not stop.wait(0.5):
                _log_new_timeline_events(emu, reported)
    except OSError as exc:
        print(f"the emulator could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logging.getLogger(__name__).info("emulator stopped")
    return 0
