"""The Airflow plugin of the Aurora Wake provider, loaded through the ``airflow.plugins`` entry point.

Airflow serializes and deserializes a timetable outside ``airflow.timetables`` only when a
plugin lists it, so without this plugin the scheduler could not read back a DAG scheduled by
:class:`~airflow_aurora_wake.timetables.AuroraPreWakeTimetable`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_aurora_wake.timetables import AuroraPreWakeTimetable


class AuroraWakePlugin(AirflowPlugin):
    """Registers :class:`~airflow_aurora_wake.timetables.AuroraPreWakeTimetable`."""

    name = "aurora_wake"
    timetables = [AuroraPreWakeTimetable]
