"""A described cluster, built directly: for tests of what is built from a snapshot (no AWS)."""

from __future__ import annotations

from typing import Any

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot, classify_cluster


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


def described_cluster(status: str = "available", *, v1_capacity: float | None = None) -> ClusterSnapshot:
    """A v2 cluster with auto-pause (or, with ``v1_capacity``, a v1 one) as DescribeDBClusters shows it.

    :param status: its status.
    :param v1_capacity: a Serverless v1 cluster at this capacity instead.
    """
    description: dict[str, Any] = {
        "DBClusterIdentifier": "sales",
        "Engine": "aurora-postgresql",
        "Status": status,
        "Endpoint": "sales.cluster.example",
        "Port": 5432,
    }
    if v1_capacity is None:
        description.update(
            EngineMode="provisioned", ServerlessV2ScalingConfiguration={"MinCapacity": 0, "MaxCapacity": 4}
        )
    else:
        description.update(
            EngineMode="serverless",
            Capacity=v1_capacity,
            ScalingConfigurationInfo={"MinCapacity": 2, "MaxCapacity": 8, "AutoPause": True},
        )
    return classify_cluster(description)
