"""A task group that holds an Aurora cluster warm around the tasks inside it, then releases it."""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Any, cast

from airflow_aurora_wake.compat import TaskGroup
from airflow_aurora_wake.operators.aurora_window import (
    DEFAULT_HOLD_FOR,
    AuroraServerlessHoldOperator,
    AuroraServerlessReleaseOperator,
)
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

__all__ = ["DEFAULT_READY_TIMEOUT", "AuroraServerlessWarmWindow"]

#: How long ``ready`` may wait: a resume takes seconds, a start from ``stopped`` several minutes.
DEFAULT_READY_TIMEOUT = timedelta(minutes=30)
#: The labels of the window's own tasks (their task ids carry the group's prefix).
_WINDOW_TASKS = ("hold", "ready", "hold_floor", "release")


class AuroraServerlessWarmWindow(TaskGroup):
    """
    Hold an Aurora cluster warm, at a capacity floor, for the tasks added inside this group.

    Use it as a context manager; the tasks created in its ``with`` block (the body) run between
    ``ready`` and ``release``::

        with AuroraServerlessWarmWindow(
            "warm", db_cluster_identifier="sales", conn_id="aurora_pg", min_capacity=8,
            max_capacity=16, hold_for=timedelta(hours=2),
        ):
            load = SQLExecuteQueryOperator(task_id="load", conn_id="aurora_pg", sql="...")

    makes ``warm.hold >> warm.ready >> warm.hold_floor >> warm.load >> warm.release``:

    - ``hold`` (setup, an
      :class:`~airflow_aurora_wake.operators.aurora_window.AuroraServerlessHoldOperator`) raises
      the floor, which resumes a paused Serverless v2 cluster through the RDS API; it starts a
      stopped cluster when ``start_if_stopped``;
    - ``ready`` (setup, a deferrable
      :class:`~airflow_aurora_wake.sensors.aurora_serverless.AuroraServerlessReadySensor`) waits
      until the database answers;
    - ``hold_floor`` (setup) holds again with the same holder: a cluster that was stopped takes
      its floor only once it is available, and the hold's expiry restarts from here;
    - the body: its first tasks follow ``hold_floor``, its last ones precede ``release``;
    - ``release`` (the teardown of the three, an
      :class:`~airflow_aurora_wake.operators.aurora_window.AuroraServerlessReleaseOperator`)
      gives the cluster back its scaling (and stops it when ``stop_if_started`` and the window
      started it). As a teardown it runs when the body fails too, and clearing a body task
      clears the setups and the release with it. As for any teardown, the DAG run's state is
      the body's: a failed release shows as a failed task, and its hold lasts until it expires
      (a scheduled
      :class:`~airflow_aurora_wake.operators.aurora_window.AuroraServerlessSweepHoldsOperator`
      then gives the cluster its scaling back).

    The window's tasks are ``window.hold``, ``window.ready``, ``window.hold_floor`` and
    ``window.release``. The release's XCom says what the window cost (``held_seconds``,
    ``min_capacity``, ``acu_hours``).

    :param group_id: The group's id (prefixes its task ids), and the default ``window_id``.
    :param db_cluster_identifier: The DB cluster identifier (or ARN). (templated)
    :param min_capacity: The floor held, in ACUs (see the hold operator).
    :param conn_id: The database connection ``ready`` probes (``postgres`` or ``mysql``).
    :param max_capacity: Raise ``MaxCapacity`` to this for the window, if it is lower.
    :param hold_for: How long a hold lasts (seconds or a ``timedelta``, at most a day), counted
        from ``hold_floor``: longer than the body may take.
    :param start_if_stopped: Start a stopped cluster.
    :param stop_if_started: Stop the cluster at the release if the window started it.
    :param window_id: The window's name within the DAG run (default: the group id).
    :param probe: ``ready``'s probe, ``"connection"`` or ``"data-api"``.
    :param data_api_secret_arn: Secret for ``probe="data-api"``.
    :param database: Database name for ``ready``; overrides the connection's schema.
    :param ready_timeout: How long ``ready`` may wait (seconds or a ``timedelta``).
    :param aws_conn_id: The AWS connection (see
        :class:`~airflow_aurora_wake.utils.mixins.AuroraHookMixin`, as ``region_name``,
        ``verify`` and ``botocore_config``).
    :param task_group_kwargs: Other ``TaskGroup`` arguments (``tooltip``, ``default_args``...).
    """

    def __init__(
        self,
        group_id: str,
        *,
        db_cluster_identifier: str,
        min_capacity: float,
        conn_id: str | None = None,
        max_capacity: float | None = None,
        hold_for: float | timedelta = DEFAULT_HOLD_FOR,
        start_if_stopped: bool = True,
        stop_if_started: bool = False,
        window_id: str | None = None,
        probe: str = "connection",
        data_api_secret_arn: str | None = None,
        database: str | None = None,
        ready_timeout: float | timedelta = DEFAULT_READY_TIMEOUT,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **task_group_kwargs: Any,
    ) -> None:
        super().__init__(group_id=group_id, **task_group_kwargs)
        in_group: dict[str, Any] = {"task_group": self, "dag": self.dag}
        cluster: dict[str, Any] = {
            "db_cluster_identifier": db_cluster_identifier,
            "aws_conn_id": aws_conn_id,
            "region_name": region_name,
            "verify": verify,
            "botocore_config": botocore_config,
        }
        window = str(self.group_id) if window_id is None else window_id
        holding: dict[str, Any] = {
            "min_capacity": min_capacity,
            "max_capacity": max_capacity,
            "hold_for": hold_for,
            "start_if_stopped": start_if_stopped,
            "window_id": window,
        }
        hold = AuroraServerlessHoldOperator(task_id="hold", **cluster, **holding, **in_group)
        ready = AuroraServerlessReadySensor(
            task_id="ready",
            conn_id=conn_id,
            probe=probe,
            data_api_secret_arn=data_api_secret_arn,
            database=database,
            deferrable=True,
            timeout=ready_timeout,
            **cluster,
            **in_group,
        )
        hold_floor = AuroraServerlessHoldOperator(task_id="hold_floor", **cluster, **holding, **in_group)
        release = AuroraServerlessReleaseOperator(
            task_id="release", stop_if_started=stop_if_started, window_id=window, **cluster, **in_group
        )
        # Each of the three is a setup of the release: clearing a body task then re-runs all of
        # them (a setup without a teardown would also re-run when a task after the window is
        # cleared, and hold again with nothing to release it).
        hold.as_setup() >> ready.as_setup() >> hold_floor.as_setup()
        # Airflow's default for a teardown: its failure does not decide the run's state. With
        # on_failure_fail_dagrun it would, but the release would then be the run's only leaf and
        # a run whose body failed would end in success once the release succeeded.
        release.as_teardown(setups=[hold, ready, hold_floor])

    @property
    def hold(self) -> AuroraServerlessHoldOperator:
        """The first hold (setup)."""
        return cast(AuroraServerlessHoldOperator, self.get_child_by_label("hold"))

    @property
    def ready(self) -> AuroraServerlessReadySensor:
        """The readiness sensor (setup)."""
        return cast(AuroraServerlessReadySensor, self.get_child_by_label("ready"))

    @property
    def hold_floor(self) -> AuroraServerlessHoldOperator:
        """The second hold, once the cluster is ready (setup)."""
        return cast(AuroraServerlessHoldOperator, self.get_child_by_label("hold_floor"))

    @property
    def release(self) -> AuroraServerlessReleaseOperator:
        """The release (teardown)."""
        return cast(AuroraServerlessReleaseOperator, self.get_child_by_label("release"))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Leave the group: put the tasks added inside it between ``hold_floor`` and ``release``."""
        try:
            if exc_type is None:
                self.wire_body()
        finally:
            super().__exit__(exc_type, exc_value, traceback)

    def wire_body(self) -> None:
        """Put the body (the group's tasks but the window's own) after ``hold_floor``, before ``release``.

        Its roots (no upstream inside the body) follow ``hold_floor`` and its leaves (no
        downstream inside the body) precede ``release``. Called when the ``with`` block ends;
        call it again after adding tasks to the group otherwise (wiring twice changes nothing).
        """
        own = {self.child_id(label) for label in _WINDOW_TASKS}
        body = [task for task in self if task.task_id not in own]
        ids = {task.task_id for task in body}
        roots = [task for task in body if not task.upstream_task_ids & ids]
        leaves = [task for task in body if not task.downstream_task_ids & ids]
        if roots:
            self.hold_floor >> roots
            leaves >> self.release
