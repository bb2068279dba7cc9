"""Zero-wait starts: wake a cluster a lead time before a scheduled run.

- :mod:`.lead`: the kind of wake a cluster needs, the lead (set, learned from the cluster's
  recent resumes, or a default) and the history tag those resumes are kept in (pure);
- :mod:`.history`: :func:`record_resume`, which adds one measured resume to that tag.
"""

from __future__ import annotations

from airflow_aurora_wake.core.prewake.history import record_resume
from airflow_aurora_wake.core.prewake.lead import (
    DEFAULT_LEAD,
    HISTORY_SIZE,
    HISTORY_TAG,
    MIN_SAMPLES,
    Lead,
    WakeKind,
    add_to_history,
    choose_lead,
    parse_history,
    wake_kind,
    warm_seconds,
)

__all__ = [
    "DEFAULT_LEAD",
    "HISTORY_SIZE",
    "HISTORY_TAG",
    "MIN_SAMPLES",
    "Lead",
    "WakeKind",
    "add_to_history",
    "choose_lead",
    "parse_history",
    "record_resume",
    "wake_kind",
    "warm_seconds",
]
