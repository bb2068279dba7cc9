"""Operator that wakes an Aurora cluster a lead time before a scheduled DAG run starts.

It runs in the companion DAG that
:func:`~airflow_aurora_wake.dag_factories.prewake.aurora_prewake_dag` builds, whose timetable
(:class:`~airflow_aurora_wake.timetables.prewake.AuroraPreWakeTimetable`) starts each run
``max_lead`` before the target DAG's run. The operator chooses the lead (set, or learned from the
cluster's recent resumes), waits in the triggerer until then, wakes the cluster, waits in the
triggerer until the database answers, and reports how long the cluster was warm before the run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_aurora_wake.compat import (
    AirflowSkipException,
    Context,
    DateTimeTrigger,
    dag_schedule_state,
    scheduled_run_id,
)
from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import AuroraWakeError, InvalidParameterError
from airflow_aurora_wake.core.hold import HoldRequest, hold_cluster
from airflow_aurora_wake.core.prewake import choose_lead, record_resume, wake_kind, warm_seconds
from airflow_aurora_wake.core.rds import AWS_CALL_TIMEOUT, describe_cluster
from airflow_aurora_wake.core.validation import validate_bool, validate_positive_seconds
from airflow_aurora_wake.core.wake_plan import WakeOptions
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook, run_sync
from airflow_aurora_wake.operators.aurora_serverless import send_wake
from airflow_aurora_wake.operators.aurora_window import window_holder
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.timetables.prewake import AuroraPreWakeTimetable
from airflow_aurora_wake.utils.prewake_schedule import epoch_of, is_scheduled, iso_of, skip_reason

__all__ = ["DEFAULT_PREWAKE_TIMEOUT", "MIN_RESUME_SECONDS", "AuroraServerlessPreWakeOperator"]

#: How long the wait after the wake may last: a resume takes seconds, a start several minutes.
DEFAULT_PREWAKE_TIMEOUT = timedelta(minutes=30)
#: A cluster that answers this soon after the wake was already warm: not a resume to learn from
#: (the shortest resume reported from the field takes 13 s; a warm cluster answers in well under 1 s).
MIN_RESUME_SECONDS = 3.0
#: XCom key of the wake's facts, read back when the task resumes after the readiness wait.
PLAN_XCOM_KEY = "prewake_plan"


class AuroraServerlessPreWakeOperator(AuroraServerlessReadySensor):
    """
    Wake an Aurora cluster just early enough that it is warm when a scheduled run starts.

    Use it through :func:`~airflow_aurora_wake.dag_factories.prewake.aurora_prewake_dag`, which
    builds its DAG: each run of that DAG starts ``max_lead`` before a run of the target DAG (its
    run's start is the target run's, ``run_after + max_lead``). The operator then:

    1. skips when the target run will not happen (target DAG paused, unknown, or with no next run
       at or before this one) or has already started (the pre-wake is missed: the target's ready
       sensor waits as usual);
    2. describes the cluster once and chooses the lead: ``lead_time`` when set, else learned from
       the cluster's recent resumes (the ``aurora-wake:resumes`` tag: their 90th percentile plus
       a margin), else the default for what the cluster does (resume or start); never more than
       ``max_lead``, and for a cluster that pauses never more than its ``SecondsUntilAutoPause``;
    3. waits in the triggerer until ``run start - lead`` (no worker slot);
    4. sends the wake that fits the cluster (as
       :class:`~airflow_aurora_wake.operators.aurora_serverless.AuroraServerlessWakeOperator`)
       and waits, deferred, until the database answers (as
       :class:`~airflow_aurora_wake.sensors.aurora_serverless.AuroraServerlessReadySensor`);
    5. records how long the resume took on the cluster's tag (when the lead is learned) and
       returns the report.

    A cluster that does not sleep (provisioned and running, Serverless without auto-pause) needs
    no pre-wake: the task returns at once with ``action="none"``. A pre-wake that fails fails its
    own task; the target DAG keeps its ready sensor, which passes at once on a warm cluster and
    waits as usual otherwise.

    Returns (XCom) the ready report with ``run_start``, ``lead_seconds``, ``lead_basis``,
    ``wake_at``, ``wake_action``, ``resume_seconds`` (wake request to ready),
    ``warm_seconds`` (ready to the run's start: the warm time paid for; negative when the
    cluster was ready only after the run started) and ``recorded``.

    It takes every parameter of the ready sensor (``timeout`` is the wait after the wake, default
    30 minutes), and:

    :param target_dag_id: The DAG whose runs this pre-wakes. (templated)
    :param lead_time: How long before the run to wake the cluster (``timedelta`` or seconds);
        ``None`` (default) learns it from the cluster's recent resumes.
    :param start_if_stopped: Start a stopped cluster (``StartDBCluster``); when ``False`` a
        stopped cluster fails the pre-wake.
    :param record_resumes: Record each resume's duration on the cluster's
        ``aurora-wake:resumes`` tag (needs ``rds:AddTagsToResource``); default: when the lead is
        learned.
    :param hold: Begin the target run's warm window at the pre-wake: ``{"window_id": ...,
        "min_capacity": ..., "max_capacity": ..., "start_if_stopped": ...}``, as
        ``aurora_prewake_dag(..., warm_window=...)`` reads them from the window's ``hold`` task.
        The wake is then the window's own hold, under the holder that the target run's window
        will use (its run id is the scheduled one), so the window's hold extends it and its
        release ends it. The pre-wake's hold lasts the lead plus ``timeout``: when the run does
        not come, it lapses by itself.
    """

    template_fields: Sequence[str] = (*AuroraServerlessReadySensor.template_fields, "target_dag_id")
    ui_color = "#f9e79f"

    def __init__(
        self,
        *,
        target_dag_id: str,
        lead_time: timedelta | float | None = None,
        start_if_stopped: bool = True,
        record_resumes: bool | None = None,
        hold: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", DEFAULT_PREWAKE_TIMEOUT.total_seconds())
        super().__init__(**kwargs)
        if self.deferrable is not True:
            # Its waits (until the lead, then for the resume) are triggers; a poke or a reschedule
            # would restart the plan from the top.
            raise InvalidParameterError(
                "deferrable",
                kwargs.get("deferrable"),
                "keep deferrable=True: the pre-wake waits in the triggerer",
            )
        if not isinstance(target_dag_id, str) or not target_dag_id:
            raise InvalidParameterError(
                "target_dag_id", target_dag_id, "give the dag_id of the DAG whose runs to pre-wake"
            )
        self.target_dag_id = target_dag_id
        lead_seconds = lead_time.total_seconds() if isinstance(lead_time, timedelta) else lead_time
        if lead_seconds is not None:
            validate_positive_seconds(lead_seconds, "lead_time")
        self.lead_seconds = lead_seconds
        self.start_if_stopped = validate_bool(start_if_stopped, "start_if_stopped")
        learned = lead_seconds is None
        self.record_resumes = (
            learned if record_resumes is None else validate_bool(record_resumes, "record_resumes")
        )
        self.hold = hold
        if hold is not None:
            # Fail the DAG's parse rather than the run; the holder stands in for the run's.
            self._hold_request("parse-time", hold_for=1.0)

    def _hold_request(self, holder: str, *, hold_for: float) -> HoldRequest:
        hold = self.hold or {}
        unknown = set(hold) - {"window_id", "min_capacity", "max_capacity", "start_if_stopped"}
        if unknown or "window_id" not in hold or "min_capacity" not in hold:
            raise InvalidParameterError(
                "hold",
                self.hold,
                "give window_id and min_capacity (max_capacity and start_if_stopped optional): "
                "aurora_prewake_dag(..., warm_window=<the window's group_id>) reads them from the window",
            )
        return HoldRequest(
            holder=holder,
            min_capacity=hold["min_capacity"],
            hold_for=hold_for,
            max_capacity=hold.get("max_capacity"),
            start_if_stopped=validate_bool(hold.get("start_if_stopped", True), "start_if_stopped"),
        )

    # ------------------------------------------------------------------ when the run starts
    def _timetable(self, context: Context) -> AuroraPreWakeTimetable:
        timetable = getattr(context.get("dag"), "timetable", None)
        if not isinstance(timetable, AuroraPreWakeTimetable):
            raise InvalidParameterError(
                "schedule",
                timetable,
                "run the pre-wake in the DAG that aurora_prewake_dag(target_dag, ...) builds: its "
                "timetable says when each target run starts",
            )
        return timetable

    def _run_start(self, context: Context, timetable: AuroraPreWakeTimetable) -> float:
        """Epoch seconds when the target run this pre-wakes is scheduled to start.

        Airflow 3 gives the run's ``run_after``: the target run's start, ``max_lead`` earlier.
        Airflow 2.11 has none: its time-based timetables start a scheduled run at the end of its
        data interval, and the companion run's is the target run's, ``max_lead`` earlier; a
        manual run (no target run behind it) pre-wakes as if the target started ``max_lead``
        after it, as on Airflow 3.
        """
        dag_run = context.get("dag_run")
        run_after = getattr(dag_run, "run_after", None)
        if run_after is None and not is_scheduled(dag_run):
            run_after = context.get("logical_date")
        if run_after is not None:
            return epoch_of(timetable.target_run_after(run_after))
        end = context.get("data_interval_end")
        if end is None:
            raise InvalidParameterError(
                "data_interval_end",
                None,
                "run the pre-wake from its scheduled DAG (a run with a data interval)",
            )
        return epoch_of(timetable.target_run_after(end))

    def _target_logical_date(self, context: Context) -> datetime | None:
        """The target run's logical date: the companion run's, ``max_lead`` later."""
        logical_date = context.get("logical_date")
        return None if logical_date is None else self._timetable(context).target_run_after(logical_date)

    def _skip_unless_the_run_will_happen(self, context: Context, run_start: float) -> None:
        """Skip (never fail) when no target run will start: a pre-wake must not wake for nothing."""
        state = dag_schedule_state(context, self.target_dag_id)
        if state is None:
            raise InvalidParameterError(
                "target_dag_id",
                self.target_dag_id,
                "no DAG of that id is known to Airflow: give the dag_id of the DAG to pre-wake",
            )
        reason = skip_reason(
            state,
            scheduled=is_scheduled(context.get("dag_run")),
            logical_date=self._target_logical_date(context),
            run_start=run_start,
            now=time.time(),
            drift=self._timetable(context).lead,
        )
        if reason is not None:
            raise AirflowSkipException(reason)

    # ------------------------------------------------------------------ the task
    def execute(self, context: Context) -> Any:
        """Check the target run, choose the lead, and wait in the triggerer until it is time.

        :param context: The task context.
        """
        request, hook = self._validated_request()
        timetable = self._timetable(context)
        run_start = self._run_start(context, timetable)
        self._skip_unless_the_run_will_happen(context, run_start)
        snapshot = run_sync(self._describe(hook, request.db_cluster_identifier, request.region_name))
        kind = wake_kind(snapshot)
        if kind is None:
            self.log.info(
                "DB cluster %r (%s, %s) does not sleep: no pre-wake needed.",
                snapshot.identifier,
                snapshot.kind.value,
                snapshot.status,
            )
            return {
                "db_cluster_identifier": snapshot.identifier,
                "kind": snapshot.kind.value,
                "status": snapshot.status,
                "wake_action": "none",
                "run_start": iso_of(run_start),
            }
        lead = choose_lead(
            kind=kind,
            tags=snapshot.tags,
            set_seconds=self.lead_seconds,
            seconds_until_auto_pause=snapshot.seconds_until_auto_pause,
            max_seconds=timetable.lead.total_seconds(),
        )
        wake_at = run_start - lead.seconds
        plan = {
            "run_start": run_start,
            "lead_seconds": lead.seconds,
            "lead_basis": lead.basis,
            "wake_kind": kind.value,
            "wake_at": wake_at,
        }
        self.log.info(
            "The run of %r starts at %s; lead %.0f s (%s): waking DB cluster %r at %s.",
            self.target_dag_id,
            iso_of(run_start),
            lead.seconds,
            lead.basis,
            snapshot.identifier,
            iso_of(wake_at),
        )
        # The plan goes to XCom, not into the deferral's kwargs: Airflow 3.3's dag.test() and
        # `airflow dags test` resume a deferred task with the trigger's event alone.
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan)
        if wake_at > time.time():
            self.defer(
                trigger=DateTimeTrigger(moment=datetime.fromtimestamp(wake_at, tz=timezone.utc)),
                method_name="wake_at_lead",
            )
        return self.wake_at_lead(context)

    def wake_at_lead(self, context: Context, event: Any = None) -> Any:
        """Wake the cluster and wait until its database answers (deferred when it does not yet).

        :param context: The task context.
        :param event: The time trigger's event (unused).
        """
        plan = self._plan(context)
        request, hook = self._validated_request()
        self._skip_unless_the_run_will_happen(context, float(plan["run_start"]))
        if self.hold is not None:
            plan = {
                **plan,
                **run_sync(self._begin_window(context, request.db_cluster_identifier, hook, plan)),
            }
        else:
            options = WakeOptions(
                start_if_stopped=self.start_if_stopped,
                data_api_secret_arn=request.data_api_secret_arn,
                database=request.database,
                probe_follows=True,
            )
            result = run_sync(send_wake(request.db_cluster_identifier, hook, options, request.instances))
            plan = {**plan, "wake_action": result.action.value, "wake_requested_at": result.requested_at}
            self.log.info(
                "Wake sent to DB cluster %r: %s. %s",
                request.db_cluster_identifier,
                result.action.value,
                result.detail,
            )
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value=plan)
        report = super().execute(context)
        return self._finish(context, report, plan, hook)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the readiness trigger: the report with the warm time.

        :param context: The task context.
        :param event: The trigger's event payload.
        """
        report = super().execute_complete(context, event)
        plan = self._plan(context)
        _, hook = self._validated_request()
        return self._finish(context, report, plan, hook)

    def _plan(self, context: Context) -> dict[str, Any]:
        """What :meth:`execute` decided (and :meth:`wake_at_lead` added), read back from XCom."""
        plan = context["ti"].xcom_pull(task_ids=self.task_id, key=PLAN_XCOM_KEY)
        if not isinstance(plan, dict) or "run_start" not in plan:
            raise AuroraWakeError(f"The pre-wake's plan is missing from XCom ({PLAN_XCOM_KEY!r}): {plan!r}.")
        return plan

    def _finish(
        self, context: Context, report: dict[str, Any], plan: dict[str, Any], hook: AuroraServerlessHook
    ) -> dict[str, Any]:
        ready_at = float(report["ready_at"])
        run_start = float(plan["run_start"])
        resume = ready_at - float(plan["wake_requested_at"])
        warm = warm_seconds(ready_at, run_start)
        recorded = False
        if self.record_resumes and resume >= MIN_RESUME_SECONDS:
            identifier = self._core_request().db_cluster_identifier
            recorded = run_sync(self._record(hook, identifier, plan["wake_kind"], resume))
        if warm < 0:
            self.log.warning(
                "DB cluster %r was ready %.1f s after the run of %r started: the lead (%s) was too short.",
                self.db_cluster_identifier,
                -warm,
                self.target_dag_id,
                plan["lead_basis"],
            )
        else:
            self.log.info(
                "DB cluster %r ready %.1f s before the run of %r starts (resume %.1f s).",
                self.db_cluster_identifier,
                warm,
                self.target_dag_id,
                resume,
            )
        return {
            **report,
            "target_dag_id": self.target_dag_id,
            "run_start": iso_of(run_start),
            "lead_seconds": round(float(plan["lead_seconds"]), 1),
            "lead_basis": plan["lead_basis"],
            "wake_at": iso_of(float(plan["wake_at"])),
            "wake_action": plan["wake_action"],
            **({"holder": plan["holder"]} if "holder" in plan else {}),
            "resume_seconds": round(resume, 3),
            "warm_seconds": round(warm, 3),
            "recorded": recorded,
        }

    async def _begin_window(
        self, context: Context, identifier: str, hook: AuroraServerlessHook, plan: dict[str, Any]
    ) -> dict[str, Any]:
        """Hold the cluster as the target run's warm window will: that hold is the wake."""
        run_start = datetime.fromtimestamp(float(plan["run_start"]), tz=timezone.utc)
        run_id = scheduled_run_id(self._target_logical_date(context), run_start)
        holder = window_holder(self.target_dag_id, run_id, str((self.hold or {})["window_id"]))
        hold_for = float(plan["lead_seconds"]) + float(self.timeout)
        request = self._hold_request(holder, hold_for=hold_for)
        requested_at = time.time()
        region = hook.region_name or await hook.aget_region_name()
        async with hook.rds_client() as rds:
            result = await hold_cluster(rds, identifier, request, region_name=region)
        self.log.info(
            "Began the warm window of run %r of %r: %s (%s).",
            run_id,
            self.target_dag_id,
            result.detail,
            result.action,
        )
        return {"wake_action": f"hold ({result.action})", "wake_requested_at": requested_at, "holder": holder}

    async def _describe(
        self, hook: AuroraServerlessHook, identifier: str, region_name: str | None
    ) -> ClusterSnapshot:
        async with hook.rds_client() as rds:
            return await describe_cluster(rds, identifier, region_name=region_name, timeout=AWS_CALL_TIMEOUT)

    async def _record(self, hook: AuroraServerlessHook, identifier: str, kind: str, seconds: float) -> bool:
        from airflow_aurora_wake.core.prewake import WakeKind

        async with hook.rds_client() as rds:
            snapshot = await describe_cluster(rds, identifier, timeout=AWS_CALL_TIMEOUT)
            await record_resume(rds, snapshot, WakeKind(kind), seconds, timeout=AWS_CALL_TIMEOUT)
        return True
