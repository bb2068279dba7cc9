"""What a warm window is asked to do, and what it did: the request, validated when built, and the results.

The results are the XCom of the Airflow tasks: :meth:`HoldResult.as_xcom` and
:meth:`ReleaseResult.as_xcom` return JSON-safe dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_aurora_wake.core.engines import V2_ACU_STEP, V2_MAX_ACU
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.core.hold.ledger import MAX_HOLD_SECONDS, ScalingRange, check_holder

__all__ = ["HoldRequest", "HoldResult", "ReleaseResult"]


@dataclass(frozen=True)
class HoldRequest:
    """What a holder asks for; validated when built.

    :param holder: who holds (see :func:`~airflow_aurora_wake.core.hold.ledger.check_holder`).
    :param min_capacity: the floor, in ACUs (v2: a multiple of 0.5 up to 256; v1: a valid capacity).
    :param hold_for: seconds until the hold expires (at most a day).
    :param max_capacity: a ceiling to raise ``MaxCapacity`` to, if the cluster's is too low.
    :param start_if_stopped: start a stopped cluster (and record that the hold did).
    """

    holder: str
    min_capacity: float
    hold_for: float
    max_capacity: float | None = None
    start_if_stopped: bool = True

    def __post_init__(self) -> None:
        check_holder(self.holder)
        _check_capacity("min_capacity", self.min_capacity, minimum=V2_ACU_STEP)
        if self.max_capacity is not None:
            _check_capacity("max_capacity", self.max_capacity, minimum=V2_ACU_STEP)
            if self.max_capacity < self.min_capacity:
                raise InvalidParameterError(
                    "max_capacity", self.max_capacity, f"give at least min_capacity ({self.min_capacity:g})"
                )
        if (
            isinstance(self.hold_for, bool)
            or not isinstance(self.hold_for, int | float)
            or not 0 < self.hold_for <= MAX_HOLD_SECONDS
        ):
            raise InvalidParameterError(
                "hold_for",
                self.hold_for,
                f"give seconds above 0 and at most {MAX_HOLD_SECONDS:.0f} (a day): a hold expires so "
                "that a run that dies cannot keep a cluster warm; hold again to extend it",
            )


def _check_capacity(name: str, value: object, *, minimum: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not minimum <= value <= V2_MAX_ACU
        or (value / V2_ACU_STEP) != int(value / V2_ACU_STEP)
    ):
        raise InvalidParameterError(
            name, value, f"give ACUs from {minimum:g} to {V2_MAX_ACU:g} in steps of {V2_ACU_STEP:g}"
        )


@dataclass(frozen=True)
class HoldResult:
    """What a hold did (the hold task's XCom).

    :param db_cluster_identifier: the cluster.
    :param kind: its kind value.
    :param action: ``hold``, ``start-and-hold`` or ``none`` (provisioned: nothing to hold).
    :param holder: who holds.
    :param min_capacity: the floor held.
    :param since: epoch seconds the hold began.
    :param until: epoch seconds it expires.
    :param scaling: the scaling the cluster has after the converge.
    :param settled: False when the floor could not be applied yet (a cluster still starting).
    :param holds: the live holds on the cluster, this one included.
    :param detail: a sentence for the log.
    """

    db_cluster_identifier: str
    kind: str
    action: str
    holder: str
    min_capacity: float
    since: float
    until: float
    scaling: ScalingRange | None
    settled: bool
    holds: int
    detail: str
    rds_calls: dict[str, int] = field(default_factory=dict)

    def as_xcom(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return _xcom(self)


@dataclass(frozen=True)
class ReleaseResult:
    """What a release did (the release task's XCom): the cost of the window included.

    :param db_cluster_identifier: the cluster.
    :param holder: whose hold ended.
    :param released: whether this holder's hold was there to release.
    :param held_seconds: how long it was held (0 if it was not there).
    :param min_capacity: the floor it held.
    :param acu_hours: ``min_capacity`` times the hours held: the floor's cost in ACU-hours.
    :param scaling: the scaling the cluster has after the converge.
    :param restored: whether the cluster is back at its original scaling (no live hold left).
    :param stopped: whether the release stopped the cluster (it started it, and asked to).
    :param holds: live holds left on the cluster.
    :param detail: a sentence for the log.
    """

    db_cluster_identifier: str
    holder: str
    released: bool
    held_seconds: float
    min_capacity: float
    acu_hours: float
    scaling: ScalingRange | None
    restored: bool
    stopped: bool
    holds: int
    detail: str
    rds_calls: dict[str, int] = field(default_factory=dict)

    def as_xcom(self) -> dict[str, Any]:
        """A JSON-safe dict (the seconds and ACU-hours rounded for reading)."""
        xcom = _xcom(self)
        xcom["held_seconds"] = round(self.held_seconds, 1)
        xcom["acu_hours"] = round(self.acu_hours, 4)
        return xcom


def _xcom(result: HoldResult | ReleaseResult) -> dict[str, Any]:
    xcom = asdict(result)
    xcom["scaling"] = None if result.scaling is None else result.scaling.as_dict()
    return xcom
