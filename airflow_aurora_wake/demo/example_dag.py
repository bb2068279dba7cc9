"""The example DAG the demo runs: its file in the package, its id, its tasks and its table."""

from __future__ import annotations

from pathlib import Path

DAG_ID = "example_aurora_serverless_wake"
#: The example DAG, shipped in the package (a link to ``example_dags/`` in the repository).
DAG_FILE = Path(__file__).resolve().parent / "dags" / f"{DAG_ID}.py"
#: The DAG's tasks in the order they run: wake >> ready >> create_table >> load_rows >> read_back.
TASK_ORDER = ("wake", "ready", "create_table", "load_rows", "read_back")
#: The example DAG's ETL table (see the DAG's documentation).
TABLE = "aurora_wake_example_sales"
