"""Sensor that waits until an Aurora cluster accepts a real database connection."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_aurora_wake.compat import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    first_reschedule_date,
)
from airflow_aurora_wake.core import errors as core_errors
from airflow_aurora_wake.core.cluster import StatusCategory
from airflow_aurora_wake.core.errors import GRACE_WINDOWS, AuroraWakeError, InvalidParameterError
from airflow_aurora_wake.core.validation import validate_bool, validate_positive_seconds
from airflow_aurora_wake.core.wait import WaitRequest, check_ready_once
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, run_sync
from airflow_aurora_wake.links.aurora import AuroraClusterLink
from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger
from airflow_aurora_wake.utils.metrics import ready_metrics, resumed_ready_metrics
from airflow_aurora_wake.utils.mixins import AuroraHookMixin, ReadyWaitMixin
from airflow_aurora_wake.utils.task_parameters import reject_none_text, task_values, validate_conn_id

#: Seconds the check before deferring may hold the worker slot, all calls included (see ``execute``).
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


class AuroraServerlessReadySensor(AuroraHookMixin, ReadyWaitMixin, BaseSensorOperator):
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
    ``rds_calls``, ``kind``, ``engine``, ``endpoint``; with ``instances="reader"`` or ``"all"``
    also ``instances``, ``reached`` (each endpoint that answered, with its DB instance) and ``note``.

    The AWS parameters ``aws_conn_id``, ``region_name``, ``verify`` (all templated) and
    ``botocore_config`` are those of every Amazon provider sensor; see
    :class:`~airflow_aurora_wake.utils.mixins.AuroraHookMixin`.

    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param conn_id: Airflow connection (``postgres`` or ``mysql``) of the database; required for
        ``probe="connection"``. An empty host means the cluster's writer endpoint. (templated)
    :param probe: ``"connection"`` (a real connection and ``SELECT 1``) or ``"data-api"``.
    :param instances: What must answer: ``"writer"`` (the cluster endpoint, default),
        ``"reader"`` (the cluster's reader endpoint, with the connection's login, port and TLS
        settings: on a cluster without a reader that serves, AWS routes it to the writer and the
        report's ``note`` says so) or ``"all"`` (every DB instance, each through its own endpoint
        from ``DescribeDBInstances``; one still ``creating`` or ``modifying`` keeps the wait
        going). Readers in failover tiers 2-15 of a Serverless v2 cluster pause on their own, so
        a task reading from the readers should wait for them. ``probe="data-api"`` reaches only
        the writer.
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

    template_fields: Sequence[str] = aws_template_fields(
        "db_cluster_identifier", "conn_id", "data_api_secret_arn", "database"
    )
    ui_color = "#7fb3d5"
    operator_extra_links = (AuroraClusterLink(),)

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
        instances: str = "writer",
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
        self.instances = instances
        self.connect_timeout = connect_timeout
        self.data_api_secret_arn = data_api_secret_arn
        self.database = database
        self.deferrable = validate_bool(deferrable, "deferrable")
        self.describe_interval = describe_interval
        self.stopped_grace = stopped_grace
        validate_positive_seconds(self.timeout, "timeout")
        self._poke_started: float | None = None
        self._pokes = 0
        # The status in which a poke saw the cluster up (poke mode keeps it between pokes): a
        # cluster stopped after that fails at once instead of after stopped_grace.
        self._seen_up: str | None = None
        # When a poke first got an answer tolerated for a grace window (a login refusal a
        # resuming cluster also gives, a host name that does not resolve yet), per window.
        self._grace_since: dict[str, float] = {}
        # Fail the DAG's parse rather than the run.
        self._core_request(at_parse_time=True)

    def _core_request(self, *, at_parse_time: bool = False) -> WaitRequest:
        """Build the core's request from this task's attributes.

        :class:`WaitRequest` makes the checks (an ARN becomes its name and gives its region; the
        probe with its secret, the timings, the database); this adds only the connection id's
        shape, which ``probe="connection"`` requires.

        :raises InvalidParameterError: A parameter the core or the connection id check rejects.
        """
        region_name, conn_id = task_values(
            self, ("region_name", "conn_id"), at_parse_time=at_parse_time
        ).values()
        request = self.wait_request(region_name, at_parse_time=at_parse_time)
        validate_conn_id(conn_id, "conn_id", required=request.probe == "connection", fix=_CONN_ID_FIX)
        return request

    def _validated_request(self) -> tuple[WaitRequest, AuroraServerlessHook]:
        """Check the rendered parameters and the connections; return the request and the hook."""
        reject_none_text({name: getattr(self, name) for name in self.template_fields})
        request = self._core_request()
        hook = self.checked_aurora_hook(
            region_name=request.region_name,
            conn_id=self.conn_id if request.probe == "connection" else None,
            database=request.database,
        )
        if request.region_name is None:
            request = dataclasses.replace(request, region_name=hook.get_region_name())
        return request, hook

    @ready_metrics
    def execute(self, context: Context) -> Any:
        """Check once; return at once if ready, else defer (or poke when not deferrable).

        :param context: The task context.
        """
        request, hook = self._validated_request()
        AuroraClusterLink.persist_cluster(
            context,
            self,
            hook=hook,
            db_cluster_identifier=request.db_cluster_identifier,
            region_name=request.region_name,
        )
        if not self.deferrable:
            return super().execute(context)
        started = time.time()
        # A paused cluster holds a connection attempt open until it has resumed. The check before
        # deferring gets a short connect timeout, so the wait for a resume happens in the
        # triggerer, not in a worker slot; a warm cluster still answers within it.
        first_check = dataclasses.replace(
            request, connect_timeout=min(request.connect_timeout, FIRST_CHECK_CONNECT_TIMEOUT)
        )
        outcome = run_sync(
            check_ready_once(
                first_check, hook, waiting_since=started, attempt=1, budget=FIRST_CHECK_CONNECT_TIMEOUT
            )
        )
        if outcome.report is not None:
            self.log.info("%s: no deferral needed.", outcome.detail)
            return outcome.report.as_xcom()
        self.log.info("%s; deferring for up to %s s.", outcome.detail, self.timeout)
        self.defer(
            trigger=AuroraServerlessReadyTrigger.for_request(
                request, hook, deadline=started + float(self.timeout)
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
                grace_since=self._grace_since or self._reschedule_grace(),
            )
        )
        self._grace_since = outcome.grace_since
        if outcome.snapshot is not None and outcome.snapshot.category is not StatusCategory.STOPPED:
            self._seen_up = outcome.snapshot.status
        self.log.info("%s.", outcome.detail)
        if outcome.report is not None:
            return PokeReturnValue(is_done=True, xcom_value=outcome.report.as_xcom())
        return False

    def _reschedule_grace(self) -> dict[str, float]:
        """In ``mode="reschedule"`` each poke is a new instance that cannot remember when a
        tolerated answer first came, so grace windows count from the task's first try instead."""
        if not self.reschedule or self._poke_started is None:
            return {}
        return dict.fromkeys(GRACE_WINDOWS, self._poke_started)

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

    @resumed_ready_metrics
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
