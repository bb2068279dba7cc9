"""What the emulator counts: per cluster (connections, Data API calls) and per emulator (AWS calls).

RDS calls are also counted per access key id, so a test that gives each client process its own
key (two triggerers, a worker) can tell their calls apart on one endpoint.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClusterCounters:
    """Counters of one emulated cluster; the owning model's lock guards them."""

    connection_attempts: int = 0
    connections_completed_at: list[float] = field(default_factory=list)
    connections_abandoned: int = 0
    connections_reset: int = 0
    connections_failed_by_fault: int = 0
    resume_answers: int = 0
    data_api_resume_answers: int = 0
    data_api_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``connections_completed`` is the number of completion times)."""
        return {
            "connection_attempts": self.connection_attempts,
            "connections_completed": len(self.connections_completed_at),
            "connections_completed_at": list(self.connections_completed_at),
            "connections_abandoned": self.connections_abandoned,
            "connections_reset": self.connections_reset,
            "connections_failed_by_fault": self.connections_failed_by_fault,
            "resume_answers": self.resume_answers,
            "data_api_resume_answers": self.data_api_resume_answers,
            "data_api_calls": self.data_api_calls,
        }


#: The per-cluster counters :meth:`CallCounters.as_dict` reports, each as identifier -> value.
PER_CLUSTER = (
    "connection_attempts",
    "connections_completed",
    "connections_completed_at",
    "connections_abandoned",
    "connections_reset",
    "connections_failed_by_fault",
    "resume_answers",
    "data_api_resume_answers",
)


class CallCounters:
    """The RDS and Data API calls the AWS endpoint received; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rds_calls: Counter[str] = Counter()
        self._rds_calls_by_cluster: dict[str, Counter[str]] = {}
        self._rds_calls_by_access_key: dict[str, Counter[str]] = {}
        self._rds_calls_by_access_key_and_cluster: dict[str, dict[str, Counter[str]]] = {}
        self._data_api_calls: Counter[str] = Counter()

    def count_rds_call(self, action: str, identifier: str | None, access_key: str | None = None) -> None:
        """Count one RDS call (faulted ones included).

        :param action: the RDS action.
        :param identifier: the cluster it named, if any: its ``DBClusterIdentifier``, or for a
            tagging call the cluster of its ``ResourceName`` ARN.
        :param access_key: the access key id that signed it, if it was signed (the id only,
            never the secret key: the signature scope names it in clear).
        """
        with self._lock:
            self._rds_calls[action] += 1
            if identifier:
                self._rds_calls_by_cluster.setdefault(identifier, Counter())[action] += 1
            if access_key:
                self._rds_calls_by_access_key.setdefault(access_key, Counter())[action] += 1
                if identifier:
                    by_cluster = self._rds_calls_by_access_key_and_cluster.setdefault(access_key, {})
                    by_cluster.setdefault(identifier, Counter())[action] += 1

    def count_data_api_call(self, identifier: str) -> None:
        """Count one Data API call on a known cluster.

        :param identifier: the cluster identifier.
        """
        with self._lock:
            self._data_api_calls[identifier] += 1

    def as_dict(
        self, rds_faults: dict[str, int], clusters: Iterable[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        """The document of ``AuroraEmulator.counters()``.

        :param rds_faults: injected error code -> count.
        :param clusters: each cluster's identifier and :meth:`ClusterCounters.as_dict`.
        """
        with self._lock:
            result: dict[str, Any] = {
                "rds_calls": dict(self._rds_calls),
                "rds_calls_by_cluster": {k: dict(v) for k, v in self._rds_calls_by_cluster.items()},
                "rds_calls_by_access_key": {k: dict(v) for k, v in self._rds_calls_by_access_key.items()},
                "rds_calls_by_access_key_and_cluster": {
                    key: {cluster: dict(actions) for cluster, actions in per_cluster.items()}
                    for key, per_cluster in self._rds_calls_by_access_key_and_cluster.items()
                },
                "rds_faults": rds_faults,
                "data_api_calls": dict(self._data_api_calls),
            }
        result.update({key: {} for key in PER_CLUSTER})
        for name, values in clusters:
            for key in PER_CLUSTER:
                result[key][name] = values[key]
        return result
