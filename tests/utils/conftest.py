"""Configure Airflow for these tests before anything imports it (see ``tests/airflow_support.py``)."""

from __future__ import annotations

import airflow_support  # noqa: F401  -- must come first: it sets AIRFLOW_HOME and friends
from airflow_support import *  # noqa: F403  -- the shared fixtures
