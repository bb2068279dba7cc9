"""A one-task DAG the end-to-end test runs while the example's sensor is deferred.

With ``[core] parallelism = 1`` it can only run if the deferred sensor holds no executor slot.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

with DAG(
    dag_id="e2e_executor_slot_probe",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
) as dag:

    @task
    def ran_while_the_sensor_was_deferred() -> str:
        """Return at once: its success is the proof that a slot was free."""
        return "ran"

    ran_while_the_sensor_was_deferred()
