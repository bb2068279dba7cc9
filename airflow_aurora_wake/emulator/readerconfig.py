"""The reader DB instances of an emulated cluster: their configuration (no moto here either).

AWS documents that the writer and the readers in failover tiers 0-1 of a Serverless v2 cluster
pause and resume together, that readers in tiers 2-15 pause and resume on their own (after
their own idle time) and take a little longer to resume, and that the reader endpoint spreads
connections over the readers. A reader can also show ``creating`` for a while after its cluster
says ``available``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["READER_STATES", "ReaderSpec", "check_readers", "reader_identifiers", "readers_from"]

#: Initial states a reader in tiers 2-15 of a Serverless v2 cluster may have.
READER_STATES = ("paused", "available")
#: The lowest failover tier whose readers pause on their own.
OWN_SLEEP_TIER = 2


@dataclass(frozen=True)
class ReaderSpec:
    """One reader DB instance of an emulated cluster.

    :param promotion_tier: ``PromotionTier`` (failover tier), 0-15. In a Serverless v2 cluster,
        readers in tiers 0-1 pause and resume with the writer; readers in tiers 2-15 pause on
        their own and resume ``Timings.reader_resume_extra_seconds`` later than the writer would.
    :param identifier: the ``DBInstanceIdentifier`` (default ``<cluster>-reader-<n>``, n from 1).
    :param state: tiers 2-15 of a Serverless v2 cluster only: ``"paused"`` or ``"available"``
        at start (``None``: as the cluster starts; a stopped cluster's readers start awake).
    :param seconds_until_auto_pause: tiers 2-15 of a Serverless v2 cluster only: the reader's
        own idle time before it pauses (``None``: the cluster's).
    :param creating_seconds: the reader shows ``creating`` (and its endpoint refuses
        connections) for this long after the cluster is created, as a just-created or restored
        cluster's instances do while the cluster already says ``available``.
    :param port: fixed port of the reader's instance endpoint (default: an ephemeral port).
    """

    promotion_tier: int = 1
    identifier: str | None = None
    state: str | None = None
    seconds_until_auto_pause: int | None = None
    creating_seconds: float = 0.0
    port: int | None = None

    def __post_init__(self) -> None:
        tier = self.promotion_tier
        if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier <= 15:
            raise ValueError(f"ReaderSpec.promotion_tier must be a whole number from 0 to 15, got {tier!r}")
        if self.identifier is not None and (not isinstance(self.identifier, str) or not self.identifier):
            raise ValueError(
                f"ReaderSpec.identifier must be a non-empty string or None, got {self.identifier!r}"
            )
        if self.state not in (None, *READER_STATES):
            raise ValueError(f"ReaderSpec.state must be None, 'paused' or 'available', got {self.state!r}")
        idle = self.seconds_until_auto_pause
        if idle is not None and (isinstance(idle, bool) or not isinstance(idle, int) or idle < 0):
            raise ValueError(f"ReaderSpec.seconds_until_auto_pause must be a whole number >= 0, got {idle!r}")
        creating = self.creating_seconds
        if isinstance(creating, bool) or not isinstance(creating, int | float) or creating < 0:
            raise ValueError(f"ReaderSpec.creating_seconds must be a number >= 0, got {creating!r}")

    @property
    def sleeps_on_its_own(self) -> bool:
        """In a Serverless v2 cluster: whether the reader pauses apart from the writer (tiers 2-15)."""
        return self.promotion_tier >= OWN_SLEEP_TIER


def readers_from(value: Iterable[Any]) -> tuple[ReaderSpec, ...]:
    """Readers as given to ``ClusterSpec``: specs, or JSON objects (the admin route).

    :param value: an iterable of :class:`ReaderSpec` or mappings of its fields.
    :raises ValueError: for an unknown field or anything else.
    """
    if isinstance(value, str | bytes | Mapping):
        raise ValueError(f"ClusterSpec.readers must be a list of readers, got {value!r}")
    readers = []
    names = {item.name for item in fields(ReaderSpec)}
    for item in value:
        if isinstance(item, ReaderSpec):
            readers.append(item)
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - names)
            if unknown:
                raise ValueError(
                    f"unknown ReaderSpec field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
                )
            readers.append(ReaderSpec(**item))
        else:
            raise ValueError(f"a reader must be a ReaderSpec or an object of its fields, got {item!r}")
    return tuple(readers)


def reader_identifiers(cluster: str, readers: Iterable[ReaderSpec]) -> list[str]:
    """The ``DBInstanceIdentifier`` of each reader, in order.

    :param cluster: the cluster identifier.
    :param readers: the readers.
    """
    return [reader.identifier or f"{cluster}-reader-{n}" for n, reader in enumerate(readers, start=1)]


def check_readers(
    cluster: str, kind: str, state: str, min_capacity: float, readers: tuple[ReaderSpec, ...]
) -> None:
    """Refuse readers the cluster cannot have.

    :param cluster: the cluster identifier (named in messages).
    :param kind: the cluster's kind.
    :param state: the cluster's initial state.
    :param min_capacity: the cluster's minimum capacity.
    :param readers: the readers.
    :raises ValueError: naming the reader, the problem and the fix.
    """
    if not readers:
        return
    if kind == "serverless-v1":
        raise ValueError(
            f"cluster {cluster!r}: an Aurora Serverless v1 cluster has no DB instances, so no readers; "
            "use kind='serverless-v2' or 'provisioned'"
        )
    names = reader_identifiers(cluster, readers)
    taken = {f"{cluster}-instance-1".lower()}
    for name, reader in zip(names, readers, strict=True):
        if name.lower() in taken:
            raise ValueError(
                f"cluster {cluster!r}: two DB instances are named {name!r}; give each reader its own "
                "identifier"
            )
        taken.add(name.lower())
        own = kind == "serverless-v2" and reader.sleeps_on_its_own
        if not own and (reader.state is not None or reader.seconds_until_auto_pause is not None):
            where = (
                "a provisioned cluster's readers never pause"
                if kind == "provisioned"
                else (f"a reader in tier {reader.promotion_tier} pauses and resumes with the writer")
            )
            raise ValueError(
                f"cluster {cluster!r}, reader {name!r}: {where}, so it takes no state or "
                "seconds_until_auto_pause of its own; give it promotion_tier 2-15 for that"
            )
        if reader.state == "paused" and (min_capacity > 0 or state == "stopped"):
            raise ValueError(
                f"cluster {cluster!r}, reader {name!r}: it cannot start paused in a cluster that "
                f"{'is stopped' if state == 'stopped' else 'has a minimum capacity above 0'}; use "
                "state='available' or None"
            )
