"""Airflow timetables of the Aurora Wake provider (registered by :mod:`airflow_aurora_wake.plugins`).

:class:`AuroraPreWakeTimetable` schedules a companion DAG a lead time before each scheduled run
of a target DAG, so the run finds its cluster awake.
"""

from __future__ import annotations

from airflow_aurora_wake.timetables.prewake import AuroraPreWakeTimetable

__all__ = ["AuroraPreWakeTimetable"]
