"""Configure Airflow for the benchmark without a metadata database (as the unit tests do).

Import this module before anything imports ``airflow``: it points ``AIRFLOW_HOME`` at a
temporary folder and defines the benchmark's connections as ``AIRFLOW_CONN_*`` environment
variables (the same way a triggerer reads environment connections).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile

if "airflow" in sys.modules and not os.environ.get("AURORA_WAKE_BENCH_AIRFLOW_HOME"):
    raise RuntimeError("import bench/airflow_env.py before airflow")

AWS_CONN_ID = "aws_bench"
PG_CONN_ID = "bench_pg"

_home = os.environ.get("AURORA_WAKE_BENCH_AIRFLOW_HOME")
if not _home:
    _home = tempfile.mkdtemp(prefix="aurora-wake-bench-airflow-")
    atexit.register(shutil.rmtree, _home, True)
os.environ.update(
    {
        "AURORA_WAKE_BENCH_AIRFLOW_HOME": _home,
        "AIRFLOW_HOME": _home,
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_home}/airflow.db",
        "AIRFLOW__CORE__FERNET_KEY": "u9QxW3i5eV2cQmHkN2x0mYq0d8cQxQm4vB2WfH8gZ1s=",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
)


def configure_connections(endpoint_url: str, region: str, *, pg_user: str = "postgres") -> None:
    """Define the AWS connection (pointing at the emulator) and the database connection.

    The database connection has no host: the cluster's endpoint from ``DescribeDBClusters`` is
    used, so one connection serves every emulated cluster.

    :param endpoint_url: the emulator's AWS endpoint.
    :param region: its region.
    :param pg_user: the PostgreSQL login (trusted by the local server).
    """
    os.environ[f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint_url, "region_name": region},
        }
    )
    os.environ[f"AIRFLOW_CONN_{PG_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "postgres", "login": pg_user, "schema": "test"}
    )
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }
    )
