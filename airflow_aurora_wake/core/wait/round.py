"""The outcome of one round of probes, and how its failures ended (held open, refused at once).

How a round failed decides two things elsewhere: the probe cadence
(:func:`~airflow_aurora_wake.core.retry.probe_retry_policy`: only a refusal gets the short one)
and whether RDS is asked again (:func:`~airflow_aurora_wake.core.wait.decision.describe_after`:
an attempt held open by a resuming instance watched the resume itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from airflow_aurora_wake.core.errors import ErrorVerdict
from airflow_aurora_wake.core.wait.decision import ProbeEnd
from airflow_aurora_wake.core.wait.request import ReachedEndpoint

__all__ = ["ProbeRound"]


@dataclass(frozen=True)
class ProbeRound:
    """The outcome of one round of probes.

    :param endpoint: ``host:port`` that answered (several, comma-separated, for ``all``).
    :param verdicts: the retryable failures, the one to report first; empty when every
        endpoint probed answered.
    :param reached: with ``reader`` or ``all``, each endpoint that answered.
    :param answered_members: with ``all``, the DB instances whose endpoint answered.
    :param note: what the user should know about what was reached (a reader endpoint that
        reached the writer).
    :param nothing_to_probe: with ``all``, no instance serves yet: the round probed nothing,
        which is no answer (only a describe can show an instance serving).
    :param held: every failed attempt was held open until its bound (a resume in progress).
    :param refused: every failed attempt was refused at once (an RST: no AWS API budget spent).
    """

    endpoint: str | None = None
    verdicts: tuple[ErrorVerdict, ...] = ()
    reached: tuple[ReachedEndpoint, ...] = ()
    answered_members: frozenset[str] = frozenset()
    note: str | None = None
    nothing_to_probe: bool = False
    held: bool = False
    refused: bool = False

    @property
    def answered(self) -> bool:
        """Every endpoint probed ran ``SELECT 1`` (and there was one to probe)."""
        return not self.verdicts and not self.nothing_to_probe

    @property
    def end(self) -> ProbeEnd:
        """How the round ended, for :func:`~airflow_aurora_wake.core.wait.decision.describe_after`."""
        if self.answered or self.nothing_to_probe:
            return ProbeEnd.NONE
        return ProbeEnd.HELD if self.held else ProbeEnd.FAILED

    @classmethod
    def failed(cls, verdicts: Iterable[ErrorVerdict], failures: Iterable[BaseException]) -> ProbeRound:
        """A round that did not answer, with how its attempts ended.

        :param verdicts: the retryable failures, the one to report first.
        :param failures: the exceptions the attempts raised.
        """
        ended = list(failures)
        return cls(
            verdicts=tuple(verdicts),
            # probe_once raises TimeoutError when its own bound ran out: the attempt was held.
            held=bool(ended) and all(isinstance(failure, TimeoutError) for failure in ended),
            refused=bool(ended) and all(_refused(failure) for failure in ended),
        )


def _refused(exc: BaseException) -> bool:
    """The connection was refused (a driver may wrap the ``ConnectionRefusedError``: MySQL 2003)."""
    seen: BaseException | None = exc
    for _ in range(4):  # a short cause chain; never loops on a cyclic one
        if seen is None or isinstance(seen, ConnectionRefusedError):
            return seen is not None
        seen = seen.__cause__ or seen.__context__
    return False
