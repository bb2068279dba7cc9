"""
Wake an Aurora cluster and wait for it through the RDS Data API: no database connection at all.

``wake >> ready >> count_tables``:

- ``wake`` sends a Data API ``ExecuteStatement`` (``SELECT 1``) that starts the resume of a
  paused Serverless v2 cluster (for a v1 or a stopped cluster it sends the capacity request or
  ``StartDBCluster`` instead) and returns at once;
- ``ready`` checks once, then defers until a Data API ``SELECT 1`` succeeds: while the cluster
  resumes the Data API answers ``DatabaseResumingException``, which the sensor retries;
  ``HttpEndpointNotEnabledException`` (Data API off) fails it at once;
- ``count_tables`` runs a statement through the Data API on the warm cluster and returns
  ``{"tables": N}``.

Use this when Airflow's workers cannot reach the database's network (the Data API is an AWS
endpoint) or when the credentials live in Secrets Manager only.

Configured by Airflow connections and Variables only:

- Connection ``aws_default`` (type ``aws``) allowed ``rds:DescribeDBClusters``,
  ``rds-data:ExecuteStatement`` and ``secretsmanager:GetSecretValue`` on the secret, with
  ``region_name`` in its extra. For the emulator (``airflow-aurora-wake emulator`` prints its
  ``endpoint_url``): login ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_data_api_cluster_arn``: the cluster's ARN
  (``arn:aws:rds:REGION:ACCOUNT:cluster:NAME``). The cluster must have the Data API enabled
  (``--enable-http-endpoint``; the emulator: ``--cluster NAME,data-api=true``).
- Variable ``aurora_wake_data_api_secret_arn``: the ARN of a Secrets Manager secret holding
  ``{"username": ..., "password": ...}`` of a database user (the emulator:
  ``AuroraEmulator.create_secret()``).
- Variable ``aurora_wake_data_api_database`` (optional): the database to run the statements in.
"""

from __future__ import annotations

from typing import Any

import pendulum

from airflow_aurora_wake.compat import DAG, task
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER_ARN = "{{ var.value.aurora_wake_data_api_cluster_arn }}"
SECRET_ARN = "{{ var.value.aurora_wake_data_api_secret_arn }}"
DATABASE = "{{ var.value.get('aurora_wake_data_api_database', '') }}"

with DAG(
    dag_id="example_aurora_serverless_data_api",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "aurora", "data-api"],
    doc_md=__doc__,
) as dag:
    wake = AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier=CLUSTER_ARN,
        aws_conn_id="aws_default",
        data_api_secret_arn=SECRET_ARN,
    )

    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER_ARN,
        aws_conn_id="aws_default",
        probe="data-api",
        data_api_secret_arn=SECRET_ARN,
        deferrable=True,
        timeout=600,
    )

    @task
    def count_tables(cluster_arn: str, secret_arn: str, database: str) -> dict[str, Any]:
        """Run a statement through the Data API on the warm cluster.

        :param cluster_arn: The cluster's ARN.
        :param secret_arn: The secret with the database login.
        :param database: The database, or empty for the secret's default.
        """
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        client = AwsBaseHook(aws_conn_id="aws_default", client_type="rds-data").conn
        options = {"database": database} if database else {}
        response = client.execute_statement(
            resourceArn=cluster_arn,
            secretArn=secret_arn,
            sql="SELECT COUNT(*) FROM information_schema.tables",
            **options,
        )
        return {"tables": int(response["records"][0][0]["longValue"])}

    wake >> ready >> count_tables(CLUSTER_ARN, SECRET_ARN, DATABASE)
