"""The holds on a cluster, kept in its own RDS tags, and the scaling they call for (pure).

Every holder (a DAG run's warm window, another deployment's, a script) writes one tag on the
cluster, ``aurora-wake:hold:<holder>``, whose value says the floor it holds, an optional
ceiling, when the hold began and when it expires, the cluster's scaling before any hold, and
whether this hold started the cluster from ``stopped``. Tags are where every holder can see
them: on the cluster, across deployments and restarts, at no cost. The scaling the cluster
should have is a function of the tags alone (:func:`scaling_wanted`): the highest floor of the
live holds, or the scaling from before the first hold when none is live. An expired hold counts
for nothing; it is removed by the next hold, release or sweep.

AWS tag values allow letters, digits, spaces and ``_ . : / = + - @`` (256 characters), so a
value reads like ``min=8 max=16 since=1767225600 until=1767232800 orig=0/4/300 started=0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airflow_aurora_wake.core.errors import InvalidParameterError

__all__ = [
    "HOLD_TAG_PREFIX",
    "MAX_HOLD_SECONDS",
    "Hold",
    "ScalingRange",
    "check_holder",
    "holds_on",
    "original_scaling",
    "scaling_wanted",
]

#: Prefix of the tag keys that carry holds.
HOLD_TAG_PREFIX = "aurora-wake:hold:"
#: The longest hold accepted: a window longer than a day is a forgotten window, and an expiry is
#: what keeps a run that died from holding a cluster warm for ever.
MAX_HOLD_SECONDS = 24 * 3600.0
#: What a holder id may contain: tag key characters, and no space (the key must read back).
_HOLDER = re.compile(r"[A-Za-z0-9_.:/=+\-@]{1,100}")


def check_holder(holder: str) -> str:
    """Validate a holder id (the tag key's suffix).

    :param holder: the id, for example derived from a DAG run.
    :raises InvalidParameterError: when it has characters a tag key cannot hold, or is too long.
    """
    if not isinstance(holder, str) or not _HOLDER.fullmatch(holder):
        raise InvalidParameterError(
            "holder",
            holder,
            "give 1 to 100 characters among letters, digits and _ . : / = + - @ (it becomes part "
            f"of the tag key {HOLD_TAG_PREFIX}<holder>)",
        )
    return holder


@dataclass(frozen=True)
class ScalingRange:
    """A Serverless v2 scaling range, or a v1 capacity (``min_capacity == max_capacity``).

    :param min_capacity: ``MinCapacity`` (v1: the capacity; 0 for a paused v1 cluster).
    :param max_capacity: ``MaxCapacity`` (v1: the capacity).
    :param seconds_until_auto_pause: ``SecondsUntilAutoPause`` when the minimum is 0, else ``None``.
    """

    min_capacity: float
    max_capacity: float
    seconds_until_auto_pause: int | None = None

    def encode(self) -> str:
        """``min/max/seconds`` (``-`` for no auto-pause), for a tag value."""
        pause = "-" if self.seconds_until_auto_pause is None else str(self.seconds_until_auto_pause)
        return f"{self.min_capacity:g}/{self.max_capacity:g}/{pause}"

    @classmethod
    def decode(cls, text: str) -> ScalingRange:
        """Read :meth:`encode`'s form.

        :param text: the encoded range.
        :raises ValueError: when it is not one.
        """
        low, high, pause = text.split("/")
        return cls(_acu(low), _acu(high), None if pause == "-" else int(pause))

    def as_dict(self) -> dict[str, float | int | None]:
        """For XCom and logs."""
        return {
            "min_capacity": self.min_capacity,
            "max_capacity": self.max_capacity,
            "seconds_until_auto_pause": self.seconds_until_auto_pause,
        }


@dataclass(frozen=True)
class Hold:
    """One holder's hold on a cluster, as its tag says.

    :param holder: who holds (the tag key's suffix).
    :param min_capacity: the floor held, in ACUs (v1: the capacity held).
    :param max_capacity: the ceiling asked for, if any.
    :param since: epoch seconds when the hold began.
    :param until: epoch seconds when it expires.
    :param original: the cluster's scaling before any hold.
    :param started: whether this hold started the cluster from ``stopped``.
    """

    holder: str
    min_capacity: float
    max_capacity: float | None
    since: float
    until: float
    original: ScalingRange
    started: bool = False

    @property
    def tag_key(self) -> str:
        """The key of this hold's tag."""
        return HOLD_TAG_PREFIX + self.holder

    def tag_value(self) -> str:
        """The value of this hold's tag (at most 256 characters)."""
        ceiling = "-" if self.max_capacity is None else f"{self.max_capacity:g}"
        return (
            f"min={self.min_capacity:g} max={ceiling} since={int(self.since)} until={int(self.until)} "
            f"orig={self.original.encode()} started={int(self.started)}"
        )

    def live(self, now: float) -> bool:
        """True until the hold expires.

        :param now: epoch seconds.
        """
        return now < self.until

    @classmethod
    def from_tag(cls, key: str, value: str) -> Hold | None:
        """Read a hold from a tag; ``None`` for another tag, or a hold tag that cannot be read.

        :param key: the tag key.
        :param value: the tag value.
        """
        if not key.startswith(HOLD_TAG_PREFIX):
            return None
        try:
            fields = dict(part.split("=", 1) for part in value.split())
            return cls(
                holder=key[len(HOLD_TAG_PREFIX) :],
                min_capacity=_acu(fields["min"]),
                max_capacity=None if fields["max"] == "-" else _acu(fields["max"]),
                since=float(fields["since"]),
                until=float(fields["until"]),
                original=ScalingRange.decode(fields["orig"]),
                started=fields.get("started", "0") == "1",
            )
        except (KeyError, ValueError):
            return None


def _acu(text: str) -> float:
    number = float(text)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"not a capacity: {text!r}")
    return number


def holds_on(tags: Mapping[str, str]) -> list[Hold]:
    """The holds a cluster's tags carry (unreadable hold tags are left out), oldest first.

    :param tags: the cluster's tags.
    """
    holds = [hold for key, value in tags.items() if (hold := Hold.from_tag(key, value)) is not None]
    return sorted(holds, key=lambda hold: (hold.since, hold.holder))


def original_scaling(
    holds: Iterable[Hold], current: ScalingRange, remembered: ScalingRange | None = None
) -> ScalingRange:
    """The scaling before any hold: as the oldest hold recorded it, else as remembered, else now.

    Every hold records the original it found (copied from the holds already there), so it
    survives any one hold's release or expiry; whoever removes the last hold tag remembers it.

    :param holds: the holds, live or expired.
    :param current: the cluster's scaling now.
    :param remembered: the original from a hold just removed, if any.
    """
    ordered = sorted(holds, key=lambda hold: (hold.since, hold.holder))
    if ordered:
        return ordered[0].original
    return remembered if remembered is not None else current


def scaling_wanted(
    holds: Iterable[Hold], now: float, current: ScalingRange, remembered: ScalingRange | None = None
) -> ScalingRange:
    """The scaling the cluster should have: the highest live floor, or the original.

    The ceiling is the highest of the original maximum, the live floors and the live ceilings
    asked for, so a floor never exceeds it. Auto-pause only applies at a minimum of 0.

    :param holds: every hold on the cluster, live or expired.
    :param now: epoch seconds.
    :param current: the cluster's scaling now.
    :param remembered: the original from a hold just removed (see :func:`original_scaling`).
    """
    holds = list(holds)
    original = original_scaling(holds, current, remembered)
    live = [hold for hold in holds if hold.live(now)]
    if not live:
        return original
    floor = max(hold.min_capacity for hold in live)
    ceilings = [hold.max_capacity for hold in live if hold.max_capacity is not None]
    ceiling = max([original.max_capacity, floor, *ceilings])
    if floor == 0:
        return ScalingRange(0.0, ceiling, original.seconds_until_auto_pause)
    return ScalingRange(floor, ceiling, None)
