"""Small pure validators for every user-facing parameter.

Each raises :class:`InvalidParameterError` naming the parameter, the value and the fix, and
returns the value in the form the core uses. The Airflow adapters call these in their
constructors so that misconfiguration fails before any waiting.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit

from airflow_aurora_wake.core.engines import ENGINE_NAMES, TIMEOUT_ACTIONS, V1_CAPACITIES, EngineFamily
from airflow_aurora_wake.core.errors import InvalidParameterError

__all__ = [
    "INSTANCES",
    "PROBES",
    "TIMEOUT_ACTIONS",
    "V1_CAPACITIES",
    "ClusterReference",
    "resolve_cluster",
    "validate_bool",
    "validate_capacity",
    "validate_cluster_identifier",
    "validate_deadline",
    "validate_endpoint_url",
    "validate_engine",
    "validate_instances",
    "validate_non_negative_seconds",
    "validate_optional_name",
    "validate_port",
    "validate_positive_seconds",
    "validate_probe",
    "validate_probe_settings",
    "validate_region",
    "validate_seconds_before_timeout",
    "validate_secret_arn",
    "validate_timeout_action",
]

PROBES = ("connection", "data-api")
#: What must answer before a wait is ready: the writer (the cluster endpoint), the reader
#: endpoint, or every DB instance of the cluster through its own instance endpoint.
INSTANCES = ("writer", "reader", "all")

_IDENTIFIER = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}$")
_CLUSTER_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):rds:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):cluster:(?P<name>.+)$"
)
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_NAME = re.compile(r"^[^\x00\s][^\x00]*$")


@dataclass(frozen=True)
class ClusterReference:
    """A validated cluster identifier and, if it came from an ARN, the ARN's region.

    :param identifier: the plain cluster identifier.
    :param region_from_arn: the ARN's region, or ``None`` for a plain identifier.
    :param arn: the ARN as given, or ``None``.
    """

    identifier: str
    region_from_arn: str | None = None
    arn: str | None = None


def _require_str(parameter: str, value: object, fix: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(parameter, value, fix)
    return value


def validate_cluster_identifier(value: object, parameter: str = "db_cluster_identifier") -> ClusterReference:
    """Validate a cluster identifier or cluster ARN.

    :param value: ``sales`` or ``arn:aws:rds:us-east-1:123456789012:cluster:sales``.
    :param parameter: the parameter name for messages.
    :returns: the identifier, and the region when an ARN was given.
    """
    fix = (
        "give the DB cluster identifier (1-63 letters, digits and single hyphens, starting with a "
        "letter) or its ARN arn:aws:rds:REGION:ACCOUNT:cluster:NAME"
    )
    text = _require_str(parameter, value, fix)
    if text != text.strip():
        raise InvalidParameterError(parameter, value, "remove the leading/trailing whitespace; " + fix)
    if not text:
        raise InvalidParameterError(parameter, value, "must not be empty; " + fix)
    match = _CLUSTER_ARN.match(text)
    if match:
        name = match.group("name")
        if not _IDENTIFIER.match(name) or name.endswith("-"):
            raise InvalidParameterError(parameter, value, "the ARN's cluster name is invalid; " + fix)
        return ClusterReference(identifier=name, region_from_arn=match.group("region"), arn=text)
    if text.startswith("arn:"):
        raise InvalidParameterError(parameter, value, "this ARN is not an RDS cluster ARN; " + fix)
    if not _IDENTIFIER.match(text) or text.endswith("-"):
        raise InvalidParameterError(parameter, value, fix)
    return ClusterReference(identifier=text)


def resolve_cluster(identifier: object, region_name: object) -> tuple[str, str | None]:
    """Validate a cluster identifier (or ARN) with the region; return the plain name and the region.

    A cluster ARN carries its region: it is used when ``region_name`` is unset, and must agree
    with it otherwise.

    :param identifier: the DB cluster identifier or ARN (``db_cluster_identifier``).
    :param region_name: the ``region_name`` parameter.
    :raises InvalidParameterError: a bad identifier or region, or a region the ARN contradicts.
    """
    reference = validate_cluster_identifier(identifier)
    region = validate_region(region_name)
    if reference.region_from_arn and region and region != reference.region_from_arn:
        raise InvalidParameterError(
            "region_name",
            region,
            f"the cluster ARN is in {reference.region_from_arn}: give that region, or none (the "
            "ARN's region is then used)",
        )
    return reference.identifier, region or reference.region_from_arn


def validate_region(value: object, parameter: str = "region_name") -> str | None:
    """Validate an AWS region name (``None`` means the default region of the credentials).

    :param value: for example ``us-east-1``.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    text = _require_str(parameter, value, "give an AWS region such as 'us-east-1', or None")
    if not _REGION.match(text):
        raise InvalidParameterError(parameter, value, "give an AWS region such as 'us-east-1'")
    return text


def validate_endpoint_url(value: object, parameter: str = "endpoint_url") -> str | None:
    """Validate an optional RDS endpoint URL (``http(s)://host[:port]``).

    :param value: the URL or ``None``.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    fix = "give an http:// or https:// URL such as 'http://127.0.0.1:5000', or leave it unset"
    text = _require_str(parameter, value, fix)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameterError(parameter, value, fix)
    return text


def validate_bool(value: object, parameter: str) -> bool:
    """Accept only a real bool (a templated ``"false"`` string would otherwise be truthy).

    :param value: the value.
    :param parameter: the parameter name for messages.
    """
    if not isinstance(value, bool):
        raise InvalidParameterError(parameter, value, "must be True or False")
    return value


def _finite_number(value: object, parameter: str, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameterError(parameter, value, fix)
    return float(value)


def validate_positive_seconds(value: object, parameter: str) -> float:
    """Validate a duration that must be > 0 (``timeout``, ``connect_timeout``, ...).

    :param value: seconds.
    :param parameter: the parameter name for messages.
    """
    fix = "must be a number of seconds > 0"
    seconds = _finite_number(value, parameter, fix)
    if seconds <= 0:
        raise InvalidParameterError(parameter, value, fix)
    return seconds


def validate_non_negative_seconds(value: object, parameter: str) -> float:
    """Validate a duration that may be 0 (``stopped_grace``).

    :param value: seconds.
    :param parameter: the parameter name for messages.
    """
    fix = "must be a number of seconds >= 0"
    seconds = _finite_number(value, parameter, fix)
    if seconds < 0:
        raise InvalidParameterError(parameter, value, fix)
    return seconds


def validate_deadline(value: object, parameter: str = "deadline") -> float:
    """Validate an absolute deadline in epoch seconds (``time.time()`` + timeout).

    :param value: epoch seconds.
    :param parameter: the parameter name for messages.
    """
    fix = "must be an absolute time in epoch seconds (time.time() + timeout)"
    deadline = _finite_number(value, parameter, fix)
    if deadline < 1e9:  # before 2001: almost surely a duration passed by mistake
        raise InvalidParameterError(parameter, value, fix + ", not a duration")
    return deadline


def validate_capacity(
    value: object, engine_family: EngineFamily | None = None, parameter: str = "capacity"
) -> int | None:
    """Validate a Serverless v1 capacity (``None`` means the cluster's minimum valid capacity).

    :param value: the capacity in ACUs.
    :param engine_family: ``postgresql`` or ``mysql`` when known, to check the engine's values.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    all_valid = sorted(set(V1_CAPACITIES["mysql"]) | set(V1_CAPACITIES["postgresql"]))
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidParameterError(parameter, value, f"must be a whole number of ACUs, one of {all_valid}")
    capacity = int(value)
    valid = V1_CAPACITIES[engine_family] if engine_family else tuple(all_valid)
    if capacity not in valid:
        engine_text = f" for Aurora {engine_family}" if engine_family else ""
        raise InvalidParameterError(parameter, value, f"valid capacities{engine_text} are {list(valid)}")
    return capacity


def validate_seconds_before_timeout(value: object, parameter: str = "seconds_before_timeout") -> int:
    """Validate ``SecondsBeforeTimeout`` of ``ModifyCurrentDBClusterCapacity`` (10..600).

    :param value: seconds.
    :param parameter: the parameter name for messages.
    """
    fix = "must be a whole number of seconds from 10 to 600"
    if isinstance(value, bool) or not isinstance(value, int) or not 10 <= value <= 600:
        raise InvalidParameterError(parameter, value, fix)
    return value


def validate_timeout_action(value: object, parameter: str = "timeout_action") -> str:
    """Validate ``TimeoutAction`` of ``ModifyCurrentDBClusterCapacity``.

    :param value: ``RollbackCapacityChange`` or ``ForceApplyCapacityChange``.
    :param parameter: the parameter name for messages.
    """
    fix = f"must be one of {list(TIMEOUT_ACTIONS)}"
    if value not in TIMEOUT_ACTIONS or not isinstance(value, str):
        raise InvalidParameterError(parameter, value, fix)
    return value


def validate_probe(value: object, parameter: str = "probe") -> Literal["connection", "data-api"]:
    """Validate the readiness probe kind.

    :param value: ``connection`` (a real database connection) or ``data-api``.
    :param parameter: the parameter name for messages.
    """
    if value == "connection" and isinstance(value, str):
        return "connection"
    if value == "data-api" and isinstance(value, str):
        return "data-api"
    raise InvalidParameterError(parameter, value, f"must be one of {list(PROBES)}")


def validate_secret_arn(value: object, parameter: str = "data_api_secret_arn") -> str | None:
    """Validate an optional Secrets Manager secret ARN.

    :param value: ``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`` or ``None``.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    fix = "give a Secrets Manager secret ARN arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME"
    text = _require_str(parameter, value, fix)
    if not _SECRET_ARN.match(text):
        raise InvalidParameterError(parameter, value, fix)
    return text


def validate_probe_settings(
    probe: object, data_api_secret_arn: object
) -> tuple[Literal["connection", "data-api"], str | None]:
    """Validate a probe together with its secret.

    ``data-api`` without a secret ARN is valid here: the cluster's managed master secret
    (``MasterUserSecret``) is used then, and a cluster without one fails right after the first
    describe (:func:`~airflow_aurora_wake.core.probes.resolve_data_api_target`).

    :param probe: the probe kind.
    :param data_api_secret_arn: the secret ARN or ``None``.
    :returns: the validated pair.
    """
    return validate_probe(probe), validate_secret_arn(data_api_secret_arn)


def validate_port(value: object, parameter: str = "port") -> int | None:
    """Validate an optional TCP port.

    :param value: 1..65535 or ``None``.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidParameterError(parameter, value, "must be a whole number from 1 to 65535")
    return value


def validate_engine(value: object, parameter: str = "engine") -> Literal["postgresql", "mysql"] | None:
    """Validate an optional database engine family.

    :param value: ``postgresql`` (also ``postgres``) or ``mysql``; ``None`` to infer from the cluster.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    family = ENGINE_NAMES.get(value) if isinstance(value, str) else None
    if family is not None:
        return family
    raise InvalidParameterError(parameter, value, "must be 'postgresql' or 'mysql' (or None to infer it)")


def validate_optional_name(value: object, parameter: str) -> str | None:
    """Validate an optional user or database name: non-empty, no surrounding whitespace.

    :param value: the name or ``None``.
    :param parameter: the parameter name for messages.
    """
    if value is None:
        return None
    text = _require_str(parameter, value, "must be a string or None")
    if not _NAME.match(text) or text != text.strip():
        raise InvalidParameterError(parameter, value, "must be non-empty without leading/trailing whitespace")
    return text


def validate_instances(
    value: object, probe: object = "connection", parameter: str = "instances"
) -> Literal["writer", "reader", "all"]:
    """Validate what must be ready, together with the probe that will check it.

    :param value: ``writer`` (the cluster endpoint), ``reader`` (the reader endpoint) or ``all``
        (every DB instance, each through its own endpoint).
    :param probe: the probe kind: the Data API reaches only the writer.
    :param parameter: the parameter name for messages.
    """
    if not isinstance(value, str) or value not in INSTANCES:
        raise InvalidParameterError(
            parameter,
            value,
            f"must be one of {list(INSTANCES)}: 'writer' waits for the cluster (writer) endpoint, "
            "'reader' for the reader endpoint, 'all' for every DB instance of the cluster",
        )
    if value != "writer" and probe == "data-api":
        raise InvalidParameterError(
            parameter,
            value,
            "probe='data-api' reaches only the writer: use instances='writer' with it, or "
            "probe='connection' with a database connection to wait for the readers",
        )
    return cast(Literal["writer", "reader", "all"], value)
