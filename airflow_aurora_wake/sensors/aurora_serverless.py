"""Sensor that waits until an Aurora cluster accepts a real database connection."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow_aurora_wake.compat import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    first_reschedule_date,
)
from airflow_aurora_wake.core import errors as core_errors
from airflow_aurora_wake.core.cluster import StatusCategory
from airflow_aurora_wake.core.errors import AuroraWakeError, InvalidParameterError
from airflow_aurora_wake.core.validation import (
    validate_bool,
    validate_non_negative_seconds,
    validate_optional_name,
    validate_positive_seconds,
    validate_probe_settings,
)
from airflow_aurora_wake.core.wait import CheckOutcome, WaitRequest, check_ready_once
from airflow_aurora_wake.hooks._params import (
    is_unrendered,
    reject_none_text,
    resolve_cluster,
    validate_aws_params,
    validate_conn_id,
)
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, run_sync
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

#: Seconds the check before deferring may spend on one connection attempt (see ``execute``).
FIRST_CHECK_CONNECT_TIMEOUT = 5.0

_CONN_ID_FIX = (
    "give the id of a postgres or mysql Airflow connection to the cluster's database "
    "(probe='connection' needs one), or use probe='data-api' with data_api_secret_arn"
)


def error_from_event(error_type: str, message: str) -> AuroraWakeError:
    """Re-create the core error a trigger reported, with the trigger's message.

    Core errors have different constructors; the message is already final, so the instance is
    built without calling them. An unknown type becomes the base :class:`AuroraWakeError` (not
    an ``AirflowException``: it fails the task even with ``soft_fail``).

    :param error_type: The class name the trigger sent.
    :param message: The message the trigger sent.
    """
    cls = getattr(core_errors, error_type, None)
    if not (isinstance(cls, type) and issubclass(cls, AuroraWakeError)):
        return AuroraWakeError(f"{error_type}: {message}")
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def _ready_xcom(outcome: CheckOutcome, *, started: float, attempts: int) -> dict[str, Any]:
    """The XCom of a readiness found by ``check_ready_once``, shaped as ``ReadyReport.as_xcom()``."""
    snapshot = outcome.snapshot
    now = time.time()
    return {
        "ready_at": now,
        "seconds_waited": round(now - started, 3),
        "attempts": attempts,
        "rds_calls": dict(outcome.rds_calls),
        "kind": snapshot.kind.value if snapshot else None,
        "engine": snapshot.engine if snapshot else None,
        "endpoint": outcome.endpoint,
    }


def _validate_sensor_arguments(kwargs: dict[str, Any]) -> None:
    """Check the base sensor's own arguments first, with messages that say what to pass.

    ``BaseSensorOperator`` accepts ``soft_fail="no"`` (truthy) and ``poke_interval=0`` (a
    describe-and-probe storm in poke mode), and fails on ``timeout=float("inf")`` with an
    ``OverflowError``.

    :param kwargs: the keyword arguments for ``BaseSensorOperator``.
    """
    for name in ("timeout", "poke_interval"):
        if name not in kwargs or (name == "timeout" and kwargs[name] is None):
            continue
        value = kwargs[name]
        validate_positive_seconds(value.total_seconds() if isinstance(value, timedelta) else value, name)
    if "soft_fail" in kwargs:
        validate_bool(kwargs["soft_fail"], "soft_fail")
    if "mode" in kwargs and kwargs["mode"] not in ("poke", "reschedule"):
        raise InvalidParameterError(
            "mode", kwargs["mode"], "must be 'poke' or 'reschedule' (it applies when deferrable=False)"
        )


class AuroraServerlessReadySensor(BaseSensorOperator):
    """
    Wait until an Aurora cluster is awake and its database answers ``SELECT 1``.

    Status is not readiness: a paused Serverless v2 cluster says ``available``. This sensor waits
    for a real database connection (or a Data API call) to succeed. It checks once at start, so
    a warm cluster costs no deferral; then, when ``deferrable``, it waits in the triggerer
    (no worker slot) until the deadline ``now + timeout``. Misconfiguration (unknown cluster or
    connection, wrong password, engine mismatch, Data API off, a state waiting cannot fix) fails
    on the first attempt with a message that says what to fix, even with ``soft_fail``: only the
    timeout can become a skip.

    Returns (XCom) the ready report: ``ready_at``, ``seconds_waited``, ``attempts``,
    ``rds_calls``, ``kind``, ``engine``, ``endpoint``.

    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param aws_conn_id: The Airflow connection used for AWS credentials. If this is ``None`` then
        the default boto3 behaviour is used (also when ``aws_default`` does not exist); any other
        id must name an existing ``aws`` connection. (templated)
    :param region_name: AWS region_name. If not specified then the default boto3 behaviour is
        used. (templated)
    :param verify: Whether or not to verify SSL certificates of the AWS API. (templated) See:
        https://boto3.amazonaws.com/v1/documentation/api/latest/reference/core/session.html
    :param botocore_config: Configuration dictionary (key-values) for botocore client. See:
        https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
    :param conn_id: Airflow connection (``postgres`` or ``mysql``) of the database; required for
        ``probe="connection"``. An empty host means the cluster's writer endpoint. (templated)
    :param probe: ``"connection"`` (a real connection and ``SELECT 1``) or ``"data-api"``.
    :param connect_timeout: Seconds each connection attempt may take (AWS advises >= 30: a
        resuming instance holds the connection open until it is ready).
    :param data_api_secret_arn: Secrets Manager secret ARN with the login, for
        ``probe="data-api"``. (templated)
    :param database: Database name; overrides the connection's schema. (templated)
    :param deferrable: Wait in the triggerer (default) instead of occupying a worker slot.
    :param describe_interval: Seconds between ``DescribeDBClusters`` calls while waiting.
    :param stopped_grace: Seconds a cluster may still show ``stopped`` (just after a start
        request) before the wait fails.
    :param timeout: Seconds to wait in total (sensor argument; also the deferral's timeout).
    :param poke_interval: Seconds between pokes when ``deferrable=False``.
    :param mode: ``"poke"`` or ``"reschedule"`` when ``deferrable=False``.
    :param soft_fail: Skip instead of fail when the wait times out (never on misconfiguration).
    """

    template_fields: Sequence[str] = (
        "aws_conn_id",
        "conn_id",
        "data_api_secret_arn",
        "database",
        "db_cluster_identifier",
        "region_name",
        "verify",
    )
    ui_color = "#7fb3d5"

    def __init__(
        self,
        *,
        db_cluster_identifier: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        conn_id: str | None = None,
        probe: str = "connection",
        connect_timeout: float = 30,
        data_api_secret_arn: str | None = None,
        database: str | None = None,
        deferrable: bool = True,
        describe_interval: float = 10.0,
        stopped_grace: float = 60.0,
        **kwargs: Any,
    ) -> None:
        _validate_sensor_arguments(kwargs)
        super().__init__(**kwargs)
        self.db_cluster_identifier = db_cluster_identifier
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.conn_id = conn_id
        self.probe = probe
        self.connect_timeout = connect_timeout
        self.data_api_secret_arn = data_api_secret_arn
        self.database = database
        self.deferrable = deferrable
        self.describe_interval = describe_interval
        self.stopped_grace = stopped_grace
        self._poke_started: float | None = None
        self._pokes = 0
        # The status in which a poke saw the cluster up (poke mode keeps it between pokes): a
        # cluster stopped after that fails at once instead of after stopped_grace.
        self._seen_up: str | None = None
        self._validate_static()

    # ----------------------------------------------------------------- validation
    def _validate_static(self) -> None:
        """Checks that templating cannot change: at construction, so a DAG fails to parse."""
        validate_bool(self.deferrable, "deferrable")
        validate_positive_seconds(self.connect_timeout, "connect_timeout")
        validate_positive_seconds(self.timeout, "timeout")
        validate_positive_seconds(self.describe_interval, "describe_interval")
        validate_non_negative_seconds(self.stopped_grace, "stopped_grace")
        if not is_unrendered(self.data_api_secret_arn):
            validate_probe_settings(self.probe, self.data_api_secret_arn)
        if self.probe == "connection" and self.conn_id is None:
            raise InvalidParameterError("conn_id", None, _CONN_ID_FIX)
        if not is_unrendered(self.db_cluster_identifier) and not is_unrendered(self.region_name):
            resolve_cluster(self.db_cluster_identifier, self.region_name)

    def _validated_request(self) -> tuple[WaitRequest, AuroraServerlessHook]:
        """Validate every (rendered) parameter; build the core's request and the hook."""
        reject_none_text({name: getattr(self, name) for name in self.template_fields})
        self._validate_static()
        validate_aws_params(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)
        identifier, region = resolve_cluster(self.db_cluster_identifier, self.region_name)
        probe, secret_arn = validate_probe_settings(self.probe, self.data_api_secret_arn)
        conn_id = validate_conn_id(self.conn_id, "conn_id", required=probe == "connection", fix=_CONN_ID_FIX)
        database = validate_optional_name(self.database, "database")
        hook = AuroraServerlessHook(
            aws_conn_id=self.aws_conn_id,
            region_name=region,
            verify=self.verify,
            botocore_config=self.botocore_config,
            conn_id=conn_id if probe == "connection" else None,
            database=database,
        )
        # Unknown conn_id: fail now, before any AWS call or waiting.
        hook.check_database_connection()
        hook.check_aws_connection()
        request = WaitRequest(
            db_cluster_identifier=identifier,
            region_name=region or hook.get_region_name(),
            probe=probe,  # type: ignore[arg-type]  # validated above
            connect_timeout=float(self.connect_timeout),
            describe_interval=float(self.describe_interval),
            stopped_grace=float(self.stopped_grace),
            data_api_secret_arn=secret_arn,
            database=database,
        )
        return request, hook

    # ------------------------------------------------------------------- running
    def execute(self, context: Context) -> Any:
        """Check once; return at once if ready, else defer (or poke when not deferrable).

        :param context: The task context.
        """
        request, hook = self._validated_request()
        if not self.deferrable:
            return super().execute(context)
        started = time.time()
        # A paused cluster holds a connection attempt open until it has resumed. The check before
        # deferring gets a short connect timeout, so the wait for a resume happens in the
        # triggerer, not in a worker slot; a warm cluster still answers within it.
        first_check = dataclasses.replace(
            request, connect_timeout=min(request.connect_timeout, FIRST_CHECK_CONNECT_TIMEOUT)
        )
        outcome = run_sync(check_ready_once(first_check, hook, waiting_since=started))
        if outcome.ready:
            self.log.info("%s: no deferral needed.", outcome.detail)
            return _ready_xcom(outcome, started=started, attempts=1)
        self.log.info("%s; deferring for up to %s s.", outcome.detail, self.timeout)
        self.defer(
            trigger=AuroraServerlessReadyTrigger(
                db_cluster_identifier=request.db_cluster_identifier,
                deadline=started + float(self.timeout),
                aws_conn_id=self.aws_conn_id,
                region_name=hook.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                conn_id=hook.conn_id,
                probe=request.probe,
                connect_timeout=request.connect_timeout,
                data_api_secret_arn=request.data_api_secret_arn,
                database=request.database,
                describe_interval=request.describe_interval,
                stopped_grace=request.stopped_grace,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One attempt (describe and probe) per poke, with the same core as the trigger.

        :param context: The task context.
        """
        request, hook = self._validated_request()
        if self._poke_started is None:
            self._poke_started = self._first_poke_time(context)
        self._pokes += 1
        outcome = run_sync(
            check_ready_once(
                request,
                hook,
                waiting_since=self._poke_started,
                attempt=self._pokes,
                seen_up=self._seen_up,
            )
        )
        if outcome.snapshot is not None and outcome.snapshot.category is not StatusCategory.STOPPED:
            self._seen_up = outcome.snapshot.status
        if outcome.ready:
            self.log.info("%s.", outcome.detail)
            return PokeReturnValue(
                is_done=True,
                xcom_value=_ready_xcom(outcome, started=self._poke_started, attempts=self._pokes),
            )
        self.log.info("%s.", outcome.detail)
        return False

    def _first_poke_time(self, context: Context) -> float:
        """When this wait began: the first reschedule in ``mode="reschedule"``, else now.

        ``stopped_grace`` is measured from it, so a stopped cluster fails after the grace in
        both poke modes.

        :param context: The task context.
        """
        if self.reschedule:
            first = first_reschedule_date(context)
            if first is not None:
                return float(first.timestamp())
        return time.time()

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return the ready report, or raise the timeout or the error.

        :param context: The task context.
        :param event: The trigger's event payload.
        """
        if not isinstance(event, dict) or "status" not in event:
            raise AuroraWakeError(f"The readiness trigger returned no usable event ({event!r}).")
        status = event["status"]
        if status == "success":
            result = {key: value for key, value in event.items() if key != "status"}
            self.log.info("DB cluster %r is ready: %s", self.db_cluster_identifier, result)
            return result
        message = str(event.get("message", ""))
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        raise error_from_event(str(event.get("error_type", "AuroraWakeError")), message)
