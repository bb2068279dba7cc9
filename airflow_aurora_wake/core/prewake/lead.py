"""How long before a scheduled run to wake its cluster, from the cluster's own resumes (pure).

A pre-wake must end before the run starts (a lead at least as long as the resume) and must not
end so early that the cluster pauses again before the run (warm time, the lead minus the resume,
below ``SecondsUntilAutoPause``). The lead is either set by the user or learned from the recent
resumes of the cluster, which every pre-wake records in one RDS tag on the cluster, where every
scheduler of every deployment sees it:

``aurora-wake:resumes`` = ``v2-resume:14.8 v2-resume:31.2 start:312.0`` (newest last).

AWS tag values allow letters, digits, spaces and ``_ . : / = + - @`` (256 characters); the
entries use letters, digits, ``-``, ``:``, ``.`` and spaces only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from airflow_aurora_wake.core.cluster import ClusterKind, ClusterSnapshot
from airflow_aurora_wake.core.errors import InvalidParameterError

__all__ = [
    "DEFAULT_LEAD",
    "HISTORY_SIZE",
    "HISTORY_TAG",
    "MAX_TAG_VALUE",
    "MIN_SAMPLES",
    "Lead",
    "WakeKind",
    "add_to_history",
    "choose_lead",
    "parse_history",
    "wake_kind",
    "warm_seconds",
]


class WakeKind(str, Enum):
    """What a wake of the cluster has to wait for; values are written in the history tag."""

    V2_RESUME = "v2-resume"
    V1_RESUME = "v1-resume"
    START = "start"  # a stopped cluster: StartDBCluster


#: The lead when too few resumes of that kind are recorded, in seconds.
DEFAULT_LEAD: Mapping[WakeKind, float] = {
    # v2 resumes take about 15 s, 30 s or more after a day paused; field reports reach 45 s.
    WakeKind.V2_RESUME: 60.0,
    # v1: about 15 s until Capacity > 0, then about 10 s until a client can connect (~25 s).
    WakeKind.V1_RESUME: 60.0,
    # StartDBCluster takes "several minutes" to reach available: 15 minutes covers that.
    WakeKind.START: 900.0,
}
#: The tag that carries the history of resumes.
HISTORY_TAG = "aurora-wake:resumes"
#: Entries kept, all kinds together (fewer when they do not fit :data:`MAX_TAG_VALUE`).
HISTORY_SIZE = 20
#: RDS's limit on a tag value's length.
MAX_TAG_VALUE = 256
#: Resumes of a kind needed before the lead is learned rather than :data:`DEFAULT_LEAD`.
MIN_SAMPLES = 3
#: A recorded resume is written as at most this many seconds: longer would mean a clock or a
#: pre-wake gone wrong, and an unbounded number could overflow the tag by itself.
MAX_SAMPLE_SECONDS = 86400.0
#: Percentile of the recorded resumes the learned lead covers (nearest rank).
PERCENTILE = 90
#: The learned lead's margin over the percentile: at least this many seconds...
MIN_MARGIN_SECONDS = 10.0
#: ...and at least this fraction of the percentile (a slow kind varies in seconds, not tenths).
MARGIN_FRACTION = 0.25

_ENTRY = re.compile(r"(v2-resume|v1-resume|start):(\d{1,9}(?:\.\d{1,9})?)")
# Statuses where only StartDBCluster (already sent, or to be sent) brings the cluster up; any
# kind of cluster can be stopped. "stopping" is FAILED for a waiter but a start for a pre-wake.
_STOPPED_STATUSES = frozenset({"stopping", "stopped", "starting"})


def wake_kind(snapshot: ClusterSnapshot) -> WakeKind | None:
    """The kind of wake the cluster needs, or ``None`` when it never sleeps.

    :param snapshot: the cluster as described.
    :returns: :attr:`WakeKind.START` for a stopped (stopping, starting) cluster of any kind; a
        resume for a serverless cluster that auto-pauses (or was seen paused); ``None`` for a
        provisioned cluster, or a serverless one without auto-pause, that is running.
    """
    if snapshot.status in _STOPPED_STATUSES:
        return WakeKind.START
    if snapshot.kind is ClusterKind.SERVERLESS_V1:
        # auto_pause is v1's configuration; Capacity 0 (may_be_paused) is a cluster asleep now.
        return WakeKind.V1_RESUME if snapshot.auto_pause or snapshot.may_be_paused else None
    # Only Serverless v2 instances pause: an instance proven paused is one, whatever the kind.
    return WakeKind.V2_RESUME if snapshot.may_be_paused else None


def _seconds(value: float) -> str:
    """Seconds for text: one decimal, none when whole (``90``, ``31.2``)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def parse_history(tags: Mapping[str, str]) -> list[tuple[WakeKind, float]]:
    """The resumes the history tag records, oldest first.

    Tags can be edited by hand: an entry that cannot be read is left out; this never raises.

    :param tags: the cluster's tags.
    """
    value = tags.get(HISTORY_TAG) if isinstance(tags, Mapping) else None
    if not isinstance(value, str):
        return []
    entries: list[tuple[WakeKind, float]] = []
    for part in value.split():
        match = _ENTRY.fullmatch(part)
        if match is not None:
            entries.append((WakeKind(match.group(1)), float(match.group(2))))
    return entries


def add_to_history(tags: Mapping[str, str], kind: WakeKind, seconds: float) -> str:
    """The history tag's new value: the recorded resumes and this one, newest last.

    The oldest entries are dropped to keep :data:`HISTORY_SIZE` entries and
    :data:`MAX_TAG_VALUE` characters (about 17 ``v2-resume`` entries fit), and so are entries
    that cannot be read.

    :param tags: the cluster's tags (the history as last described).
    :param kind: the kind of this wake.
    :param seconds: how long it took (capped at :data:`MAX_SAMPLE_SECONDS`).
    :raises InvalidParameterError: ``seconds`` is not a finite number >= 0.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise InvalidParameterError("seconds", seconds, "give the resume's duration as a finite number")
    if seconds < 0:
        raise InvalidParameterError(
            "seconds", seconds, "give a duration >= 0: a resume that ended before it began is a clock error"
        )
    entries = [*parse_history(tags), (WakeKind(kind), min(float(seconds), MAX_SAMPLE_SECONDS))]
    texts = [f"{entry_kind.value}:{entry_seconds:.1f}" for entry_kind, entry_seconds in entries]
    texts = texts[-HISTORY_SIZE:]
    while len(" ".join(texts)) > MAX_TAG_VALUE:
        texts.pop(0)
    return " ".join(texts)


@dataclass(frozen=True)
class Lead:
    """How long before the run to wake the cluster, and why.

    :param seconds: the lead, in seconds.
    :param basis: where it came from, in words for logs and XCom.
    """

    seconds: float
    basis: str

    def as_dict(self) -> dict[str, float | str]:
        """For XCom and logs."""
        return {"seconds": self.seconds, "basis": self.basis}


def _nearest_rank(samples: list[float], percent: int) -> float:
    """The nearest-rank percentile: the smallest sample with ``percent`` % of them at or below it.

    :param samples: at least one value.
    :param percent: 1..100.
    """
    ordered = sorted(samples)
    rank = max(1, math.ceil(percent * len(ordered) / 100))  # 0.9 * 30 would be 27.000000000000004
    return ordered[rank - 1]


def _pauses(kind: WakeKind, seconds_until_auto_pause: int | None) -> int | None:
    """The cluster's ``SecondsUntilAutoPause`` when it applies to this kind of wake."""
    if kind is WakeKind.START or seconds_until_auto_pause is None or seconds_until_auto_pause <= 0:
        return None
    return seconds_until_auto_pause


def _positive(parameter: str, value: object, fix: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidParameterError(parameter, value, fix)
    return float(value)


def choose_lead(
    *,
    kind: WakeKind,
    tags: Mapping[str, str],
    set_seconds: float | None,
    seconds_until_auto_pause: int | None,
    max_seconds: float,
) -> Lead:
    """The lead for a wake of ``kind``: as set, else learned from the history, else the default.

    Learned: with at least :data:`MIN_SAMPLES` recorded resumes of this kind, their nearest-rank
    90th percentile plus a margin of ``max(10 s, 25 %)`` of it. A resume's kind may auto-pause
    again: a learned or default lead is capped to ``seconds_until_auto_pause`` (the warm time,
    lead minus resume, then stays below it), and a set lead above it is refused. Every lead is
    capped to ``max_seconds``.

    :param kind: the kind of wake (:func:`wake_kind`).
    :param tags: the cluster's tags (the history, :data:`HISTORY_TAG`).
    :param set_seconds: the user's ``lead_time`` in seconds, or ``None`` to learn it.
    :param seconds_until_auto_pause: the cluster's ``SecondsUntilAutoPause``, if shown.
    :param max_seconds: how far ahead of the run the pre-wake starts at most.
    :raises InvalidParameterError: ``lead_time`` not a positive number of seconds, or longer than
        the cluster's ``SecondsUntilAutoPause``; ``max_seconds`` not a positive number.
    """
    kind = WakeKind(kind)
    cap = _positive(
        "max_seconds", max_seconds, "give how far ahead of the run the pre-wake starts, in seconds > 0"
    )
    pauses = _pauses(kind, seconds_until_auto_pause)
    if set_seconds is not None:
        seconds = _positive(
            "lead_time",
            set_seconds,
            "give a number of seconds > 0 (for example 90), or leave it unset to learn it from the "
            "cluster's recent resumes",
        )
        if pauses is not None and seconds > pauses:
            raise InvalidParameterError(
                "lead_time",
                set_seconds,
                f"the cluster pauses again after {pauses} s without connections (SecondsUntilAutoPause), "
                f"so a {_seconds(seconds)} s lead would let it fall asleep before the run: give a "
                f"lead of at most {pauses} s, or raise the cluster's SecondsUntilAutoPause to at "
                f"least {_seconds(seconds)}",
            )
        basis = f"set: {_seconds(seconds)} s"
    else:
        samples = [sample for sample_kind, sample in parse_history(tags) if sample_kind is kind]
        if len(samples) >= MIN_SAMPLES:
            high = _nearest_rank(samples, PERCENTILE)
            margin = max(MIN_MARGIN_SECONDS, MARGIN_FRACTION * high)
            seconds = high + margin
            basis = (
                f"learned: p{PERCENTILE} of {len(samples)} {kind.value} resumes "
                f"({_seconds(high)} s; max {_seconds(max(samples))} s) + {_seconds(margin)} s margin"
            )
        else:
            seconds = DEFAULT_LEAD[kind]
            basis = f"default for {kind.value} (fewer than {MIN_SAMPLES} resumes recorded)"
        if pauses is not None and seconds > pauses:
            seconds = float(pauses)
            basis += (
                f"; capped to {pauses} s, the cluster's SecondsUntilAutoPause, so it does not pause "
                "again before the run"
            )
    if seconds > cap:
        seconds = cap
        basis += f"; capped to {_seconds(cap)} s (the pre-wake starts at most that far ahead of the run)"
    return Lead(seconds=seconds, basis=basis)


def warm_seconds(ready_at: float, run_start: float) -> float:
    """Seconds the cluster was ready before the run's scheduled start.

    :param ready_at: epoch seconds when the pre-wake saw the cluster ready.
    :param run_start: epoch seconds of the run's scheduled start.
    :returns: the warm time; negative when the cluster was ready only after the start (the
        pre-wake ran late, or the lead was too short).
    """
    return run_start - ready_at
