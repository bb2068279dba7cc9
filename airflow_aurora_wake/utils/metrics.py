"""Airflow metrics of the wake, the wait and their failures, sent through Airflow's ``Stats``.

The one module that emits metrics. The operator and the sensor get them from a decorator on
their ``execute`` (and the sensor's ``execute_complete``), the trigger from one call with its
event, so the adapters stay a few lines of mapping and the core stays Airflow-free: every value
comes from what the core already returns (the wake result, the ready report, the error class).

Whatever the deployment configured (StatsD, Datadog, OpenTelemetry, or nothing) receives them,
like Airflow's own metrics. Each metric is sent under its name with its tags, and, unless
``[metrics] legacy_names_on`` is false, a second time under a dotted name that carries the values
of some tags (``aurora_wake.wakes.serverless-v2.connection-nudge``), as Airflow does for its own
metrics: plain StatsD drops tags. Tag values are bounded enums and class names only: never a run
id, never a secret, and not the cluster identifier (a templated name has no bound; ``dag_id``/
``task_id`` of Airflow's own ``ti.*`` metrics already tell the clusters apart). With the values
the provider knows, dotted names stay within 63 characters with Airflow's ``airflow`` prefix
(2.11's limit for OpenTelemetry names). ``docs/metrics.md`` is the reference.

A metric that cannot be sent is logged, never raised: metrics must not fail a task.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, cast

from airflow_aurora_wake.compat import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    Context,
    Stats,
    conf,
)
from airflow_aurora_wake.core.errors import ReadyTimeoutError
from airflow_aurora_wake.core.validation import resolve_cluster

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Counter: wake requests the wake operator sent (or found under way), by cluster kind and action.
WAKES = "aurora_wake.wakes"
#: Timer: from the wake operator's request to readiness seen by the sensor downstream of it.
WAKE_TO_READY = "aurora_wake.wake_to_ready"
#: Timer: how long a readiness wait took, from its start to readiness.
WAIT_DURATION = "aurora_wake.wait_duration"
#: Counter: probe attempts the waits needed until readiness.
PROBE_ATTEMPTS = "aurora_wake.probe_attempts"
#: Counter: readiness waits that reached their timeout.
TIMEOUTS = "aurora_wake.timeouts"
#: Counter: failures that ended a wake or a wait before its timeout, by error class.
ERRORS = "aurora_wake.errors"

#: For each metric, the tags whose values also make up its dotted name, in order.
DOTTED_NAME_TAGS: dict[str, tuple[str, ...]] = {
    WAKES: ("kind", "action"),
    WAKE_TO_READY: ("action",),
    WAIT_DURATION: ("kind", "mode"),
    PROBE_ATTEMPTS: ("kind", "mode"),
    TIMEOUTS: ("mode",),
    ERRORS: ("error_type",),
}

#: Class attribute of the operators whose return value is a wake result (``requested_at``): a
#: sensor downstream of one reads it for :data:`WAKE_TO_READY`.
RETURNS_WAKE_RESULT = "returns_wake_result"

_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_-]")


def _tag(value: object) -> str:
    """A tag value that is also a valid segment of a dotted StatsD name (no ``.``, no spaces)."""
    text = str(getattr(value, "value", value) or "unknown")
    return _NOT_IN_TAG.sub("_", text)[:40]


def _dotted_names_on() -> bool:
    # Airflow 3.2+ says with this option (default true) whether names carrying tag values are
    # wanted besides the tagged ones. 2.11 has no such option (it always sends both for its own
    # metrics); set there, it still applies to these.
    return conf.getboolean("metrics", "legacy_names_on", fallback=True)


def _send(method: str, name: str, value: Any, tags: Mapping[str, object]) -> None:
    """Send one metric under its name with tags, and under its dotted name; never raise."""
    try:
        values = {key: _tag(tag) for key, tag in tags.items()}
        send = getattr(Stats, method)
        send(name, value, tags=values)
        if _dotted_names_on():
            in_name = DOTTED_NAME_TAGS[name]
            dotted = ".".join([name, *(values[key] for key in in_name)])
            send(dotted, value, tags={key: tag for key, tag in values.items() if key not in in_name})
    except Exception as exc:
        log.warning("Could not send the metric %s: %s", name, exc)


def record_wake(result: Mapping[str, Any]) -> None:
    """Count a wake request from the wake operator's result (its XCom).

    :param result: ``WakeResult.as_xcom()``.
    """
    _send("incr", WAKES, 1, {"kind": result.get("kind"), "action": result.get("action")})


def record_ready(report: Mapping[str, Any], *, mode: str, probe: object) -> None:
    """Time a wait that ended ready and count the probe attempts it needed.

    Waits that share one loop in a triggerer each count that loop's attempts: the counter
    divided by the count of :data:`WAIT_DURATION` is the attempts a wait needed.

    :param report: ``ReadyReport.as_xcom()`` (the sensor's XCom, or the trigger's event).
    :param mode: ``first-check``, ``deferred``, ``poke`` or ``reschedule``.
    :param probe: ``connection`` or ``data-api``.
    """
    tags = {"kind": report.get("kind"), "probe": probe, "mode": mode}
    seconds = report.get("seconds_waited")
    if isinstance(seconds, int | float):
        _send("timing", WAIT_DURATION, timedelta(seconds=max(0.0, float(seconds))), tags)
    attempts = report.get("attempts")
    if isinstance(attempts, int) and attempts > 0:
        _send("incr", PROBE_ATTEMPTS, attempts, tags)


def record_timeout(*, mode: str, probe: object) -> None:
    """Count a wait that reached its timeout.

    :param mode: ``deferred``, ``poke`` or ``reschedule``.
    :param probe: ``connection`` or ``data-api``.
    """
    _send("incr", TIMEOUTS, 1, {"probe": probe, "mode": mode})


def record_error(task: str, error_type: str) -> None:
    """Count a failure that ended a wake or a wait before its timeout.

    :param task: ``wake`` or ``ready``.
    :param error_type: The error's class name (``ClusterNotFoundError``...).
    """
    _send("incr", ERRORS, 1, {"task": task, "error_type": error_type})


def record_trigger_event(event: Mapping[str, Any], *, probe: object) -> None:
    """Record what a readiness trigger is about to yield (in the triggerer).

    :param event: The trigger's event payload (``status`` ``success``, ``timeout`` or ``error``).
    :param probe: ``connection`` or ``data-api``.
    """
    status = event.get("status")
    if status == "success":
        record_ready(event, mode="deferred", probe=probe)
    elif status == "timeout":
        record_timeout(mode="deferred", probe=probe)
    elif status == "error":
        record_error("ready", str(event.get("error_type") or "unknown"))


def _record_failure(task: str, exc: BaseException, *, mode: str | None, probe: object) -> None:
    """Record the exception an ``execute`` raised, if it is a failure of the wake or the wait.

    Airflow's own control flow (deferral, reschedule, a skip for another reason) is not one. A
    skip is a timeout under ``soft_fail``, or an error under ``never_fail`` (its cause).

    :param task: ``wake`` or ``ready``.
    :param exc: What ``execute`` raised.
    :param mode: Where a wait waited (``None`` for the wake, which has no timeout).
    :param probe: ``connection`` or ``data-api`` (``None`` for the wake).
    """
    if isinstance(exc, AirflowSkipException):
        cause = exc.__cause__
        if isinstance(cause, Exception) and not isinstance(cause, AirflowException):
            record_error(task, type(cause).__name__)
        elif mode is not None and (cause is None or isinstance(cause, AirflowSensorTimeout)):
            record_timeout(mode=mode, probe=probe)
    elif mode is not None and isinstance(exc, AirflowSensorTimeout | ReadyTimeoutError):
        record_timeout(mode=mode, probe=probe)
    elif isinstance(exc, Exception) and not isinstance(exc, AirflowException):
        record_error(task, type(exc).__name__)


def _sensor_mode(sensor: Any) -> str:
    """Where a sensor's ``execute`` waits: its check before deferring, or its pokes."""
    if getattr(sensor, "deferrable", False):
        return "first-check"
    return "reschedule" if getattr(sensor, "reschedule", False) else "poke"


def wake_metrics(execute: F) -> F:
    """Decorate the wake operator's ``execute``: count its wake request, or its failure."""

    @functools.wraps(execute)
    def wrapper(self: Any, context: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            result = execute(self, context, *args, **kwargs)
        except BaseException as exc:
            _record_failure("wake", exc, mode=None, probe=None)
            raise
        if isinstance(result, Mapping):
            record_wake(result)
        return result

    return cast(F, wrapper)


def ready_metrics(execute: F) -> F:
    """Decorate the readiness sensor's ``execute``: the wait's metrics when it ends in the worker.

    A wait that ends here (ready at the check before deferring, or in poke/reschedule mode) is
    timed, and its wake-to-ready is measured; a timeout or an error is counted. A deferred wait
    is recorded by its trigger (:func:`record_trigger_event`) and :func:`resumed_ready_metrics`.
    """

    @functools.wraps(execute)
    def wrapper(self: Any, context: Context, *args: Any, **kwargs: Any) -> Any:
        mode = _sensor_mode(self)
        probe = getattr(self, "probe", None)
        try:
            result = execute(self, context, *args, **kwargs)
        except BaseException as exc:
            _record_failure("ready", exc, mode=mode, probe=probe)
            raise
        if isinstance(result, Mapping):
            record_ready(result, mode=mode, probe=probe)
            record_wake_to_ready(self, context, result)
        return result

    return cast(F, wrapper)


def resumed_ready_metrics(execute_complete: F) -> F:
    """Decorate the sensor's ``execute_complete``: wake-to-ready of a deferred wait.

    The trigger already recorded the wait itself; only the worker can read the wake's XCom.
    """

    @functools.wraps(execute_complete)
    def wrapper(self: Any, context: Context, *args: Any, **kwargs: Any) -> Any:
        result = execute_complete(self, context, *args, **kwargs)
        if isinstance(result, Mapping):
            record_wake_to_ready(self, context, result)
        return result

    return cast(F, wrapper)


def record_wake_to_ready(sensor: Any, context: Context, report: Mapping[str, Any]) -> None:
    """Time from the wake request of a wake operator directly upstream to readiness.

    Only an upstream task whose class sets :data:`RETURNS_WAKE_RESULT`, on the same cluster,
    whose action was a wake (not ``none``), counts; with several, the latest request. Nothing is
    sent without one.

    :param sensor: The readiness sensor (its ``db_cluster_identifier`` is rendered).
    :param context: The task context (its ``ti`` pulls the wake's XCom).
    :param report: The ready report (``ready_at``, ``kind``).
    """
    try:
        wake = _upstream_wake(sensor, context)
        ready_at = report.get("ready_at")
        if wake is None or not isinstance(ready_at, int | float):
            return
        seconds = max(0.0, float(ready_at) - float(wake["requested_at"]))
        tags = {"kind": report.get("kind") or wake.get("kind"), "action": wake.get("action")}
    except Exception as exc:
        log.warning("Could not measure the metric %s: %s", WAKE_TO_READY, exc)
        return
    _send("timing", WAKE_TO_READY, timedelta(seconds=seconds), tags)


def _upstream_wake(sensor: Any, context: Context) -> Mapping[str, Any] | None:
    """The latest wake result, on the sensor's cluster, of its direct upstream wake tasks."""
    ti = context.get("ti")
    # ``task.dag`` raises (not None) on a task outside a DAG, e.g. one executed by hand.
    dag = sensor.dag if sensor.has_dag() else None
    if ti is None or dag is None:
        return None
    identifier, _ = resolve_cluster(sensor.db_cluster_identifier, None)
    wakes = []
    for task_id in sorted(sensor.upstream_task_ids):
        # Only wake tasks are pulled: another task's return value may be large, or remote.
        if not getattr(dag.get_task(task_id), RETURNS_WAKE_RESULT, False):
            continue
        value = ti.xcom_pull(task_ids=task_id)
        if (
            isinstance(value, Mapping)
            and value.get("db_cluster_identifier") == identifier
            and value.get("action") != "none"
            and isinstance(value.get("requested_at"), int | float)
        ):
            wakes.append(value)
    return max(wakes, key=lambda wake: float(wake["requested_at"]), default=None)
