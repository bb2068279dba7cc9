"""A described cluster, built directly: for tests of what is built from a snapshot (no AWS)."""

from __future__ import annotations

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot


def v2_snapshot(
    engine: str = "aurora-postgresql",
    endpoint: str | None = "sales.cluster.example",
    port: int | None = 15432,
) -> ClusterSnapshot:
    """A Serverless v2 cluster ``sales`` with auto-pause, as ``DescribeDBClusters`` would show it.

    :param engine: the RDS engine name.
    :param endpoint: the writer endpoint (``None``: none reported).
    :param port: the cluster's port.
    """
    return ClusterSnapshot(
        identifier="sales",
        arn="arn:aws:rds:us-east-1:123456789012:cluster:sales",
        kind=ClusterKind.SERVERLESS_V2,
        engine=engine,
        status="available",
        capacity=None,
        min_capacity=0.0,
        max_capacity=4.0,
        auto_pause=True,
        seconds_until_auto_pause=300,
        endpoint=endpoint,
        reader_endpoint=None,
        port=port,
        http_endpoint_enabled=False,
        iam_auth_enabled=True,
    )
