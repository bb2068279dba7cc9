"""Finding Airflow connections, and what to say when one is missing or its look-up fails.

One rule for every place the provider looks a connection up (the operator, the sensor's check
and pokes in a worker, the trigger in the triggerer or inline under ``dag.test()``): "not found"
only when no source has it, and any other failure named as what it is.
"""

from __future__ import annotations

from airflow_aurora_wake.compat import (
    AirflowNotFoundException,
    BaseHook,
    Connection,
    get_async_connection,
)
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    ConnectionLookupError,
    InvalidParameterError,
    safe_error_text,
)

#: The AWS connection id that may be missing (boto3's default credentials are used instead).
DEFAULT_AWS_CONN_ID = "aws_default"


def aws_connection_fault(conn_id: str, connection: Connection | None) -> str | None:
    """What makes the AWS connection ``conn_id`` unusable, or ``None`` when it may be used.

    The Amazon provider falls back to the default boto3 credentials, with only a warning, when
    an AWS connection does not exist: a typo then acts, or signs IAM tokens, with other
    credentials. Only the conventional default ``aws_default`` keeps that fallback, since many
    deployments rely on it without defining the connection.

    :param conn_id: The AWS connection id.
    :param connection: The connection found, ``None`` when none has that id.
    """
    if connection is None:
        if conn_id == DEFAULT_AWS_CONN_ID:
            return None
        return (
            "no Airflow connection with this id exists: create an AWS connection with this id "
            f"(or an AIRFLOW_CONN_{conn_id.upper()} environment variable, set for the worker and "
            "the triggerer)"
        )
    conn_type = (connection.conn_type or "aws").lower()
    if conn_type != "aws":
        return f"connection {conn_id!r} has type {conn_type!r}, not 'aws'"
    return None


def connection_not_found(conn_id: str) -> InvalidParameterError:
    return InvalidParameterError(
        "conn_id",
        conn_id,
        "no Airflow connection with this id exists: create it (UI, `airflow connections add`, a "
        f"secrets backend, or an AIRFLOW_CONN_{conn_id.upper()} environment variable, which must "
        "then be set for the worker and for the triggerer). If it does exist, Airflow may have read "
        "a failing secrets backend as 'not found': its DEBUG log names the failure",
    )


class _LookUp:
    """Context of one look-up: "not found" is an answer, any other failure is named as what it is."""

    def __init__(self, conn_id: str, parameter: str) -> None:
        self.conn_id = conn_id
        self.parameter = parameter
        self.found: Connection | None = None

    def __enter__(self) -> _LookUp:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        if error is None or isinstance(error, AuroraWakeError) or not isinstance(error, Exception):
            return False
        if isinstance(error, AirflowNotFoundException):
            return True  # found stays None
        raise ConnectionLookupError(
            f"the look-up of Airflow connection {self.conn_id!r} ({self.parameter}) failed, so it may "
            f"exist: {safe_error_text(error)}. Fix what this names (the secrets backend's settings "
            "or its access, the connection's stored fields) and re-run the task"
        ) from None


def find_connection(conn_id: str, *, parameter: str) -> Connection | None:
    """Look up an Airflow connection: ``None`` when no source has it, an error when the look-up failed.

    :param conn_id: The connection id.
    :param parameter: The parameter that named it, for messages (``conn_id``, ``aws_conn_id``...).
    :raises ConnectionLookupError: When a source failed or refused, rather than "not found".
    """
    with _LookUp(conn_id, parameter) as look_up:
        look_up.found = BaseHook.get_connection(conn_id)
    return look_up.found


async def afind_connection(conn_id: str, *, parameter: str) -> Connection | None:
    """:func:`find_connection` without blocking the event loop (triggers, ``asyncio.run``).

    :param conn_id: The connection id.
    :param parameter: The parameter that named it, for messages.
    :raises ConnectionLookupError: When a source failed or refused, rather than "not found".
    """
    with _LookUp(conn_id, parameter) as look_up:
        look_up.found = await get_async_connection(conn_id)
    return look_up.found
