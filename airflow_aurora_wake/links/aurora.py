"""The operator extra link from a task to its Aurora cluster in the AWS console.

It follows the Amazon provider's links (:class:`~airflow.providers.amazon.aws.links.base_aws.
BaseAwsLink`): the task persists the region, the partition's console domain and the cluster
identifier in an XCom, and the link is built from them (in the webserver on Airflow 2.11; by the
task runner when the task ends on Airflow 3, which stores the URL for the API server). The task
persists them before any AWS call, so a task that failed on its cluster links to it too.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import botocore.session
from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink
from botocore.exceptions import UnknownRegionError

from airflow_aurora_wake.compat import Context
from airflow_aurora_wake.hooks.aurora_serverless import AuroraServerlessHook

log = logging.getLogger(__name__)


def aws_partition(region_name: str) -> str:
    """The AWS partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``...), from botocore's data.

    A region botocore does not know yet is taken for the commercial partition, as botocore's
    endpoint resolution does for clients.

    :param region_name: The region, e.g. ``cn-north-1``.
    """
    try:
        partition: str = botocore.session.get_session().get_partition_for_region(region_name)
    except UnknownRegionError:
        return "aws"
    return partition


class AuroraClusterLink(BaseAwsLink):
    """Link to the Aurora DB cluster's page in the AWS console (its region and partition)."""

    name = "Aurora Cluster"
    key = "_aurora_db_cluster"
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/rds/home?region={region_name}#database:id={db_cluster_identifier};is-cluster=true"
    )

    def format_link(self, **kwargs: Any) -> str:
        """Build the URL; no link where the partition has no public console (``aws-iso``...).

        :param kwargs: What :meth:`persist_cluster` stored.
        """
        if not (
            kwargs.get("aws_domain") and kwargs.get("region_name") and kwargs.get("db_cluster_identifier")
        ):
            return ""
        identifier = quote(str(kwargs["db_cluster_identifier"]), safe="")
        return super().format_link(**{**kwargs, "db_cluster_identifier": identifier})

    @classmethod
    def persist_cluster(
        cls,
        context: Context,
        operator: Any,
        *,
        hook: AuroraServerlessHook,
        db_cluster_identifier: str,
        region_name: str | None = None,
    ) -> None:
        """Store what the link needs for this task instance; never fail the task for it.

        Like the Amazon provider's links, nothing is stored when the task has
        ``do_xcom_push=False``.

        :param context: The task context.
        :param operator: The task.
        :param hook: The task's hook, whose AWS connection gives the region when none is given.
        :param db_cluster_identifier: The plain cluster identifier (an ARN's name).
        :param region_name: The cluster's region, when the task knows it already.
        """
        try:
            region = region_name or hook.get_region_name()
            if not region:
                return
            partition = aws_partition(region)
        except Exception as exc:
            log.warning("No console link for DB cluster %r: %s", db_cluster_identifier, exc)
            return
        cls.persist(
            context=context,
            operator=operator,
            region_name=region,
            aws_partition=partition,
            db_cluster_identifier=db_cluster_identifier,
        )
