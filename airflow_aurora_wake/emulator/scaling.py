"""Serverless v2 scaling of an emulated cluster: the range, what a change of it does, its checks.

``ModifyDBCluster`` reaches the model through moto (see ``motoglue``), after the AWS endpoint
has refused what AWS refuses (:func:`requested_v2_scaling`): moto itself checks nothing of it.
Pure Python: no moto, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_aurora_wake.core.engines import V2_ACU_STEP, V2_MAX_ACU

__all__ = ["ScalingRequestError", "V2Scaling", "requested_v2_scaling"]

#: The query-protocol prefix of ``ModifyDBCluster``'s v2 scaling members.
_MEMBER = "ServerlessV2ScalingConfiguration."


@dataclass(frozen=True)
class V2Scaling:
    """A Serverless v2 cluster's ``ServerlessV2ScalingConfiguration``.

    :param min_capacity: ``MinCapacity`` in ACUs (0: the cluster may auto-pause).
    :param max_capacity: ``MaxCapacity`` in ACUs.
    :param seconds_until_auto_pause: ``SecondsUntilAutoPause``; kept while the minimum is above 0
        (RDS then hides it) and in force again once the minimum returns to 0.
    """

    min_capacity: float
    max_capacity: float
    seconds_until_auto_pause: int

    def merged(
        self, min_capacity: float | None, max_capacity: float | None, seconds_until_auto_pause: int | None
    ) -> V2Scaling:
        """This scaling with the members a request gave (``None``: unchanged).

        A minimum returned to 0 without ``SecondsUntilAutoPause`` keeps the last idle time
        (UNCONFIRMED whether AWS keeps it or falls back to its default of 300 s).
        """
        low = self.min_capacity if min_capacity is None else float(min_capacity)
        high = self.max_capacity if max_capacity is None else float(max_capacity)
        pause = (
            self.seconds_until_auto_pause if seconds_until_auto_pause is None else seconds_until_auto_pause
        )
        return V2Scaling(low, high, int(pause))

    def changes_range_of(self, before: V2Scaling) -> bool:
        """Whether going from ``before`` to this scaling changes the capacity range.

        AWS lists "changing the scaling range" among the actions that resume a paused v2
        instance (its example: ``MinCapacity`` 0 to 0.5) and does not narrow it to raising the
        minimum, so the emulator reads it as written: any change of ``MinCapacity`` or
        ``MaxCapacity`` resumes a paused cluster; ``SecondsUntilAutoPause`` alone is not the
        range, and a request that repeats the range changes nothing. Which changes AWS really
        counts is UNCONFIRMED; raising the minimum, what a warm window does, wakes under
        either reading.

        :param before: the scaling before the change.
        """
        return (self.min_capacity, self.max_capacity) != (before.min_capacity, before.max_capacity)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (a timeline event's ``before`` and ``after``)."""
        return {
            "min_capacity": self.min_capacity,
            "max_capacity": self.max_capacity,
            "seconds_until_auto_pause": self.seconds_until_auto_pause,
        }


class ScalingRequestError(Exception):
    """A ``ModifyDBCluster`` scaling request AWS refuses; the endpoint answers ``code`` (400).

    :param code: the AWS error code.
    :param message: the message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def requested_v2_scaling(
    form: Mapping[str, str], identifier: str, kind: str, current: V2Scaling
) -> V2Scaling | None:
    """The scaling a ``ModifyDBCluster`` request asks for, checked as AWS checks it.

    AWS documents the values (ACUs in half steps, at most 256, minimum at most the maximum) but
    not the exact error of each refusal; the emulator answers ``InvalidParameterValue``.
    ``SecondsUntilAutoPause`` is not held to AWS's 300..86,400 s, so that tests can restore the
    short idle times their clusters were given.

    :param form: the request's query parameters.
    :param identifier: the cluster, for messages.
    :param kind: the cluster's kind.
    :param current: the cluster's scaling now (the members the request leaves out keep it).
    :returns: ``None`` when the request does not touch the v2 scaling.
    :raises ScalingRequestError: for a value AWS refuses, or a Serverless v1 cluster.
    """
    members = {key[len(_MEMBER) :]: value for key, value in form.items() if key.startswith(_MEMBER)}
    if not members:
        return None
    if kind == "serverless-v1":
        raise ScalingRequestError(
            "InvalidParameterCombination",
            f"DB cluster {identifier} is an Aurora Serverless v1 cluster (engine mode serverless): "
            "ServerlessV2ScalingConfiguration applies to provisioned engine mode clusters; "
            "use ScalingConfiguration.",
        )
    wanted = current.merged(_acus(members, "MinCapacity"), _acus(members, "MaxCapacity"), _seconds(members))
    if not 0 <= wanted.min_capacity <= wanted.max_capacity or wanted.max_capacity == 0:
        raise ScalingRequestError(
            "InvalidParameterValue",
            f"MinCapacity {wanted.min_capacity:g} and MaxCapacity {wanted.max_capacity:g} are not a valid "
            "Aurora Serverless v2 capacity range: MinCapacity must be from 0 to MaxCapacity, and "
            "MaxCapacity above 0.",
        )
    return wanted


def _acus(members: Mapping[str, str], name: str) -> float | None:
    raw = members.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= V2_MAX_ACU and (value / V2_ACU_STEP).is_integer()):
        raise ScalingRequestError(
            "InvalidParameterValue",
            f"{name} {raw} is not valid: give ACUs from 0 to {V2_MAX_ACU:g} in steps of {V2_ACU_STEP:g}.",
        )
    return value


def _seconds(members: Mapping[str, str]) -> int | None:
    raw = members.get("SecondsUntilAutoPause")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ScalingRequestError(
            "InvalidParameterValue", f"SecondsUntilAutoPause {raw} is not valid: give whole seconds."
        )
    return value
