"""``airflow-aurora-wake demo``: the whole story in one command, on this machine, without AWS.

It starts the emulator with a paused Serverless v2 PostgreSQL cluster (and a MySQL one when a
MySQL/MariaDB server is reachable and the MySQL provider installed), prepares a throwaway
Airflow home on SQLite in a temporary folder, runs the example DAG
``example_aurora_serverless_wake`` against each cluster with ``dag.test()`` in a child process,
and prints a timeline: paused, wake requested, resume, the sensor's check in the worker, its
deferral, the trigger's event and where the wait went, ETL done, with the seconds between. With
``--dag example_aurora_warm_window`` it runs the warm window instead, waits for the clusters to
pause again after their idle time and checks that no hold is left. See
:mod:`airflow_aurora_wake.demo.cli`.

Importing this package is light: Airflow is imported only by the child process
(:mod:`airflow_aurora_wake.demo.runner`), the emulator only when the demo runs.
"""

from __future__ import annotations

from airflow_aurora_wake.demo.cli import add_demo_parser, run_demo

__all__ = ["add_demo_parser", "run_demo"]
