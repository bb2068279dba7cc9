"""The compat module's version switch, on the Airflow that runs the tests (3.3, or 2.11 in CI)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from airflow_support import AIRFLOW_2

from airflow_aurora_wake import compat

FIRST = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_version_flag_matches_the_installed_airflow() -> None:
    import airflow

    assert compat.AIRFLOW_V_3_0_PLUS is (int(airflow.__version__.split(".")[0]) >= 3)
    assert compat.AIRFLOW_V_3_0_PLUS is not AIRFLOW_2


def test_first_reschedule_date_without_a_task_instance_is_none() -> None:
    assert compat.first_reschedule_date({}) is None  # type: ignore[arg-type]


def test_first_reschedule_date_asks_the_running_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=-1, max_tries=3)
    task = SimpleNamespace(retries=2)
    context: Any = {"ti": ti, "task": task}
    if AIRFLOW_2:
        import airflow.sensors.base

        def orig_start_date(**kwargs: Any) -> datetime:
            asked.append(kwargs)
            return FIRST

        monkeypatch.setattr(airflow.sensors.base, "_orig_start_date", orig_start_date)
        assert compat.first_reschedule_date(context) == FIRST
        # The first try of this run of retries, as 2.11's own BaseSensorOperator computes it.
        assert asked == [{"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 2}]
    else:
        ti.get_first_reschedule_date = lambda ctx: asked.append(ctx) or FIRST
        assert compat.first_reschedule_date(context) == FIRST
        assert asked == [context]
