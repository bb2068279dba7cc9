"""Apache Airflow provider that makes sleeping Amazon Aurora clusters safe to use.

The package has an Airflow-free core (:mod:`airflow_aurora_wake.core`), thin Airflow
adapters (``hooks``, ``operators``, ``sensors``, ``triggers``, ``task_groups``, ``timetables``,
``dag_factories``) and an emulator of
sleeping clusters (:mod:`airflow_aurora_wake.emulator`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info", "wake_and_wait", "wake_and_wait_sync"]

# The plain-Python API is loaded on first use so that importing the package (which Airflow's
# ProvidersManager does for get_provider_info) stays light.
_LAZY_CORE_NAMES = frozenset({"wake_and_wait", "wake_and_wait_sync"})


def __getattr__(name: str) -> Any:
    """Load ``wake_and_wait`` / ``wake_and_wait_sync`` from :mod:`airflow_aurora_wake.core` lazily."""
    if name in _LAZY_CORE_NAMES:
        from airflow_aurora_wake.core import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ``ProvidersManager``.

    ``package-name`` must equal the normalised distribution name, or Airflow refuses it.
    """
    return {
        "package-name": "airflow-aurora-wake",
        "name": "Aurora Wake",
        "description": "Wake sleeping Amazon Aurora clusters and wait, deferred, for a real connection.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Amazon Aurora Serverless",
                "external-doc-url": "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2.html",
                "tags": ["aws"],
            }
        ],
        "operators": [
            {
                "integration-name": "Amazon Aurora Serverless",
                "python-modules": [
                    "airflow_aurora_wake.operators.aurora_serverless",
                    "airflow_aurora_wake.operators.aurora_window",
                    "airflow_aurora_wake.operators.aurora_prewake",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Amazon Aurora Serverless",
                "python-modules": ["airflow_aurora_wake.sensors.aurora_serverless"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Amazon Aurora Serverless",
                "python-modules": ["airflow_aurora_wake.triggers.aurora_serverless"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon Aurora Serverless",
                "python-modules": ["airflow_aurora_wake.hooks.aurora_serverless"],
            }
        ],
        # Airflow 2.11's webserver rebuilds a serialized task's links only from classes registered
        # here (Airflow 3 shows the URL the task runner stored when the task ended).
        "extra-links": ["airflow_aurora_wake.links.aurora.AuroraClusterLink"],
    }
