"""A warm window: hold a cluster at a capacity floor, release it, sweep expired holds.

- :mod:`.ledger`: the holds kept in the cluster's tags and the scaling they call for (pure);
- :mod:`.results`: :class:`HoldRequest` (the validation) and the results (the tasks' XCom);
- :mod:`.window`: :func:`hold_cluster`, :func:`release_cluster`, :func:`sweep_holds` over RDS.
"""

from __future__ import annotations

from airflow_aurora_wake.core.hold.ledger import HOLD_TAG_PREFIX, MAX_HOLD_SECONDS, Hold, ScalingRange
from airflow_aurora_wake.core.hold.results import HoldRequest, HoldResult, ReleaseResult
from airflow_aurora_wake.core.hold.window import hold_cluster, release_cluster, sweep_holds

__all__ = [
    "HOLD_TAG_PREFIX",
    "MAX_HOLD_SECONDS",
    "Hold",
    "HoldRequest",
    "HoldResult",
    "ReleaseResult",
    "ScalingRange",
    "hold_cluster",
    "release_cluster",
    "sweep_holds",
]
