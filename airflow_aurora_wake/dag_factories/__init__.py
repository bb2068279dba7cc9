"""Functions that build whole DAGs beside the user's own (the pre-wake companion DAG)."""

from __future__ import annotations

from airflow_aurora_wake.dag_factories.prewake import DEFAULT_MAX_LEAD, aurora_prewake_dag

__all__ = ["DEFAULT_MAX_LEAD", "aurora_prewake_dag"]
