"""Operators of the warm window: hold a cluster at a capacity floor, release it, sweep expired holds.

Each is a thin adapter over :mod:`airflow_aurora_wake.core.hold`: parameters -> core types ->
one core call over the hook's RDS client. The holder is not a parameter: it is derived from the
DAG id, the run id and ``window_id`` (:func:`window_holder`), so the release of a DAG run finds
its hold without XCom, and a cleared or re-run hold task extends the same hold.
:class:`~airflow_aurora_wake.task_groups.warm_window.AuroraServerlessWarmWindow` wires them as
Airflow setup and teardown tasks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.utils.mixins import aws_template_fields

from airflow_aurora_wake.compat import BaseOperator, Context
from airflow_aurora_wake.core.errors import AuroraWakeError, InvalidParameterError
from airflow_aurora_wake.core.hold import (
    HoldRequest,
    HoldResult,
    ReleaseResult,
    hold_cluster,
    release_cluster,
    sweep_holds,
)
from airflow_aurora_wake.core.hold.ledger import check_holder
from airflow_aurora_wake.core.validation import resolve_cluster, validate_bool
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, run_sync
from airflow_aurora_wake.links.aurora import AuroraClusterLink
from airflow_aurora_wake.utils.mixins import AuroraHookMixin
from airflow_aurora_wake.utils.task_parameters import is_unrendered, reject_none_text, task_values

__all__ = [
    "DEFAULT_HOLD_FOR",
    "DEFAULT_WINDOW_ID",
    "AuroraServerlessHoldOperator",
    "AuroraServerlessReleaseOperator",
    "AuroraServerlessSweepHoldsOperator",
    "window_holder",
]

#: How long a hold lasts unless ``hold_for`` says otherwise; a hold task run again extends it.
DEFAULT_HOLD_FOR = timedelta(hours=2)
#: The window's name within a DAG run when the DAG has one window.
DEFAULT_WINDOW_ID = "warm_window"
#: At most this much of the DAG id starts a holder: enough to recognise the DAG in the tags.
HOLDER_DAG_ID_CHARS = 40

_NOT_IN_HOLDER = re.compile(r"[^A-Za-z0-9_.:/=+\-@]")
_WINDOW_ID_FIX = (
    "give a non-empty name for the window within the DAG run, without surrounding spaces; its hold "
    f"and its release must use the same one (default {DEFAULT_WINDOW_ID!r})"
)
_CLUSTERS_FIX = (
    "give one or more DB cluster identifiers or ARNs: a list, or text with the names separated by "
    "commas or spaces (for example a Variable rendered with '{{ var.value.NAME }}')"
)


def window_holder(dag_id: str, run_id: str, window_id: str) -> str:
    """The holder id of one warm window of one DAG run: ``<dag_id prefix>.<16 hex digits>``.

    Deterministic, so the hold task, a second hold (``hold_floor``), the release and a re-run of
    the same DAG run all name the same hold, while another run or another window of the same
    run holds apart. The DAG id prefix (its first 40 characters, those a tag key cannot hold
    turned into ``_``) lets a person reading the cluster's tags see which DAG holds; the digest
    of all three makes it unique (64 bits).

    :param dag_id: The DAG id.
    :param run_id: The DAG run id.
    :param window_id: The window's name within the run.
    """
    prefix = _NOT_IN_HOLDER.sub("_", dag_id)[:HOLDER_DAG_ID_CHARS] or "dag"
    digest = hashlib.sha256(json.dumps([dag_id, run_id, window_id]).encode()).hexdigest()[:16]
    return check_holder(f"{prefix}.{digest}")


def _validate_window_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidParameterError("window_id", value, _WINDOW_ID_FIX)
    return value


def _seconds(value: object) -> Any:
    """``hold_for`` in seconds; anything but a ``timedelta`` is left to :class:`HoldRequest` to check."""
    return value.total_seconds() if isinstance(value, timedelta) else value


class _ClusterTaskMixin(AuroraHookMixin):
    """What the hold and release operators share: the cluster, the holder, the RDS client."""

    db_cluster_identifier: str
    window_id: str
    template_fields: Sequence[str]
    dag_id: str

    def _cluster(self, *, at_parse_time: bool = False) -> tuple[str, str | None]:
        """The plain cluster name and its region (an ARN's, or ``region_name``), validated."""
        values = task_values(self, ("db_cluster_identifier", "region_name"), at_parse_time=at_parse_time)
        return resolve_cluster(values["db_cluster_identifier"], values["region_name"])

    def _holder(self, context: Context) -> str:
        """This window's holder in the running DAG run (see :func:`window_holder`)."""
        ti = context.get("ti")
        run_id = context.get("run_id") or getattr(ti, "run_id", None)
        dag_id = getattr(ti, "dag_id", None) or self.dag_id
        if not run_id:
            raise AuroraWakeError(
                f"{type(self).__name__} names its hold after the DAG run (DAG id, run id, window_id): "
                "run it as a task of a DAG run"
            )
        return window_holder(str(dag_id), str(run_id), _validate_window_id(self.window_id))

    def _rendered_cluster(self) -> tuple[str, str | None, AuroraServerlessHook]:
        """Check the rendered parameters and the AWS connection; return the cluster and the hook."""
        reject_none_text({name: getattr(self, name) for name in self.template_fields})
        identifier, region = self._cluster()
        hook = self.checked_aurora_hook(region_name=region, conn_id=None, database=None)
        return identifier, region, hook


class AuroraServerlessHoldOperator(_ClusterTaskMixin, BaseOperator):
    """
    Hold an Aurora cluster warm: raise its capacity floor until ``hold_for`` from now.

    Serverless v2: ``MinCapacity`` is raised to ``min_capacity`` (and ``MaxCapacity`` to
    ``max_capacity`` when given and higher), which also resumes a paused cluster through the RDS
    API alone. Serverless v1: ``min_capacity`` is requested with
    ``ModifyCurrentDBClusterCapacity``. A stopped cluster is started when ``start_if_stopped``
    (its floor applies once it is available: hold again after a readiness sensor, as
    :class:`~airflow_aurora_wake.task_groups.warm_window.AuroraServerlessWarmWindow` does).
    Provisioned clusters have nothing to hold: the task says so and succeeds.

    The hold is a tag on the cluster, ``aurora-wake:hold:<holder>``, with its expiry; the
    cluster's scaling is always the highest floor of the live holds of every holder, and comes
    back to what it was when the last one ends. The holder is derived from the DAG id, the run id
    and ``window_id`` (:func:`window_holder`): run the task again in the same DAG run and it
    extends the same hold; :class:`AuroraServerlessReleaseOperator` with the same ``window_id``
    ends it.

    Returns (XCom) the hold result: ``db_cluster_identifier``, ``kind``, ``action`` (``hold``,
    ``start-and-hold`` or ``none``), ``holder``, ``min_capacity``, ``since``, ``until``,
    ``scaling``, ``settled``, ``holds``, ``detail``, ``rds_calls``.

    The AWS parameters ``aws_conn_id``, ``region_name``, ``verify`` (all templated) and
    ``botocore_config`` are those of every Amazon provider operator; see
    :class:`~airflow_aurora_wake.utils.mixins.AuroraHookMixin`.

    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param min_capacity: The floor, in ACUs: Serverless v2 from 0.5 to 256 in steps of 0.5, or a
        valid Serverless v1 capacity. A floor above the cluster's ``MaxCapacity`` needs
        ``max_capacity``.
    :param max_capacity: Raise ``MaxCapacity`` to this for the window, if it is lower.
    :param hold_for: How long the hold lasts (seconds or a ``timedelta``, at most a day); it
        expires by itself after that, so a run that dies cannot keep the cluster warm.
    :param start_if_stopped: Start a stopped cluster (recorded in the hold, so that the release
        may stop it again); when ``False`` a stopped cluster is an error.
    :param window_id: The window's name within the DAG run (the same for its release).
    """

    template_fields: Sequence[str] = aws_template_fields("db_cluster_identifier")
    ui_color = "#f5b041"
    operator_extra_links = (AuroraClusterLink(),)

    def __init__(
        self,
        *,
        db_cluster_identifier: str,
        min_capacity: float,
        max_capacity: float | None = None,
        hold_for: float | timedelta = DEFAULT_HOLD_FOR,
        start_if_stopped: bool = True,
        window_id: str = DEFAULT_WINDOW_ID,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.db_cluster_identifier = db_cluster_identifier
        self.min_capacity = min_capacity
        self.max_capacity = max_capacity
        self.hold_for = hold_for
        self.start_if_stopped = start_if_stopped
        self.window_id = window_id
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        # Fail the DAG's parse rather than the run; the holder there only stands in for the run's.
        self._cluster(at_parse_time=True)
        self._hold_request(window_holder(self.dag_id, "parse-time", _validate_window_id(window_id)))

    def _hold_request(self, holder: str) -> HoldRequest:
        """The core's request: its construction checks the floor, the ceiling and the length."""
        return HoldRequest(
            holder=holder,
            min_capacity=self.min_capacity,
            hold_for=_seconds(self.hold_for),
            max_capacity=self.max_capacity,
            start_if_stopped=validate_bool(self.start_if_stopped, "start_if_stopped"),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        """Hold the cluster (again: extend the hold) and return the result.

        :param context: The task context.
        """
        identifier, region, hook = self._rendered_cluster()
        AuroraClusterLink.persist_cluster(
            context, self, hook=hook, db_cluster_identifier=identifier, region_name=region
        )
        request = self._hold_request(self._holder(context))
        result = run_sync(self._hold(identifier, hook, request))
        self.log.info("%s (%s, action %s).", result.detail, result.kind, result.action)
        if not result.settled:
            self.log.warning(
                "The floor of DB cluster %r is not applied yet (the hold is recorded): hold again once "
                "the cluster is available.",
                identifier,
            )
        return result.as_xcom()

    async def _hold(self, identifier: str, hook: AuroraServerlessHook, request: HoldRequest) -> HoldResult:
        region = hook.region_name or await hook.aget_region_name()
        async with hook.rds_client() as rds:
            return await hold_cluster(rds, identifier, request, region_name=region)


class AuroraServerlessReleaseOperator(_ClusterTaskMixin, BaseOperator):
    """
    Release the hold of this DAG run's window on an Aurora cluster, and say what it cost.

    Removes the hold's tag and converges: the cluster keeps the highest floor of the other live
    holds, or gets back the scaling it had before the first hold. With ``stop_if_started`` it
    also stops a cluster that this window's hold started from ``stopped`` (never one that was
    already running, nor one another live hold still needs). A hold that is not there (released
    already, or expired and swept) is no error. Use it as the teardown of the hold task, so it
    runs when the work between them fails.

    Returns (XCom) the release result: ``db_cluster_identifier``, ``holder``, ``released``,
    ``held_seconds``, ``min_capacity``, ``acu_hours`` (the floor times the hours held: what the
    window cost at its floor), ``scaling``, ``restored``, ``stopped``, ``holds``, ``detail``,
    ``rds_calls``.

    The AWS parameters are those of :class:`AuroraServerlessHoldOperator`.

    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param stop_if_started: Stop the cluster when the window's hold started it and no other live
        hold is left.
    :param window_id: The window's name within the DAG run (the same as its hold's).
    """

    template_fields: Sequence[str] = aws_template_fields("db_cluster_identifier")
    ui_color = "#aed6f1"
    operator_extra_links = (AuroraClusterLink(),)

    def __init__(
        self,
        *,
        db_cluster_identifier: str,
        stop_if_started: bool = False,
        window_id: str = DEFAULT_WINDOW_ID,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.db_cluster_identifier = db_cluster_identifier
        self.stop_if_started = stop_if_started
        self.window_id = window_id
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        # Fail the DAG's parse rather than the run.
        self._cluster(at_parse_time=True)
        _validate_window_id(window_id)
        validate_bool(stop_if_started, "stop_if_started")

    def execute(self, context: Context) -> dict[str, Any]:
        """Release the hold and return the result, with the ACU-hours held.

        :param context: The task context.
        """
        identifier, region, hook = self._rendered_cluster()
        AuroraClusterLink.persist_cluster(
            context, self, hook=hook, db_cluster_identifier=identifier, region_name=region
        )
        holder = self._holder(context)
        stop = validate_bool(self.stop_if_started, "stop_if_started")
        result = run_sync(self._release(identifier, hook, holder, stop))
        # The core's detail says how long the floor was held and its ACU-hours.
        self.log.info("%s.", result.detail)
        return result.as_xcom()

    async def _release(
        self, identifier: str, hook: AuroraServerlessHook, holder: str, stop_if_started: bool
    ) -> ReleaseResult:
        region = hook.region_name or await hook.aget_region_name()
        async with hook.rds_client() as rds:
            return await release_cluster(
                rds, identifier, holder, stop_if_started=stop_if_started, region_name=region
            )


class AuroraServerlessSweepHoldsOperator(AuroraHookMixin, BaseOperator):
    """
    Remove the expired holds of one or more Aurora clusters and give them back their scaling.

    A hold whose run died before its release expires by itself and counts for nothing, but its
    tag stays, and so does its floor until the next hold or release on that cluster converges.
    Schedule this (hourly, say) to converge every listed cluster: expired hold tags removed, the
    scaling set to the highest live floor or back to the original. Live holds are left alone.
    A cluster that fails is logged and the others are still swept; the task then fails with the
    first error.

    Returns (XCom) one release result per cluster (see
    :class:`AuroraServerlessReleaseOperator`), with ``holder`` ``"sweep"`` and ``released``
    true when expired holds were removed.

    The AWS parameters are those of :class:`AuroraServerlessHoldOperator`; a cluster ARN's
    region applies to that cluster.

    :param db_cluster_identifiers: The DB cluster identifiers (or ARNs): a list, or text with the
        names separated by commas or spaces. (templated)
    """

    template_fields: Sequence[str] = aws_template_fields("db_cluster_identifiers")
    ui_color = "#d5dbdb"

    def __init__(
        self,
        *,
        db_cluster_identifiers: str | Sequence[str],
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.db_cluster_identifiers = db_cluster_identifiers
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        # Fail the DAG's parse rather than the run.
        self._clusters(at_parse_time=True)

    def _clusters(self, *, at_parse_time: bool = False) -> list[tuple[str, str | None]]:
        """Each cluster's plain name and region, validated; at parse time, templates are skipped."""
        value = self.db_cluster_identifiers
        (region,) = task_values(self, ("region_name",), at_parse_time=at_parse_time).values()
        if at_parse_time and is_unrendered(value):
            return []
        if isinstance(value, str):
            names: list[object] = [name for name in re.split(r"[\s,]+", value) if name]
        elif isinstance(value, list | tuple):
            names = list(value)
        else:
            raise InvalidParameterError("db_cluster_identifiers", value, _CLUSTERS_FIX)
        if not names:
            raise InvalidParameterError("db_cluster_identifiers", value, _CLUSTERS_FIX)
        clusters = []
        for name in names:
            if at_parse_time and is_unrendered(name):
                continue
            reject_none_text({"db_cluster_identifiers": name})
            try:
                clusters.append(resolve_cluster(name, region))
            except InvalidParameterError as error:
                if error.parameter != "db_cluster_identifier":
                    raise
                raise InvalidParameterError("db_cluster_identifiers", name, error.fix) from None
        return list(dict.fromkeys(clusters))  # a cluster listed twice is swept once

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Sweep each cluster in turn; return their results.

        :param context: The task context.
        """
        reject_none_text({name: getattr(self, name) for name in self.template_fields})
        clusters = self._clusters()
        # Every connection is checked before the first AWS call.
        hooks = {
            region: self.checked_aurora_hook(region_name=region, conn_id=None, database=None)
            for region in dict.fromkeys(region for _, region in clusters)
        }
        results, errors = run_sync(self._sweep(clusters, hooks))
        for result in results:
            self.log.info("%s.", result.detail)
        if errors:
            raise errors[0]
        return [result.as_xcom() for result in results]

    async def _sweep(
        self, clusters: list[tuple[str, str | None]], hooks: dict[str | None, AuroraServerlessHook]
    ) -> tuple[list[ReleaseResult], list[AuroraWakeError]]:
        results: list[ReleaseResult] = []
        errors: list[AuroraWakeError] = []
        for identifier, region in clusters:
            hook = hooks[region]
            try:
                region_name = hook.region_name or await hook.aget_region_name()
                async with hook.rds_client() as rds:
                    results.append(await sweep_holds(rds, identifier, region_name=region_name))
            except AuroraWakeError as error:
                # One cluster's failure (gone, access denied) must not leave the others unswept.
                self.log.error("Sweeping DB cluster %r failed: %s", identifier, error)
                errors.append(error)
        return results, errors
