"""Fixtures of the core's tests; the fakes themselves live in ``core_fakes``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from core_fakes import ScriptedProbe


@pytest.fixture
def scripted_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProbe]:
    """A scripted probe installed in place of the real one in the wait loop."""
    from airflow_aurora_wake.core import probes as probes_module

    probe = ScriptedProbe()
    monkeypatch.setattr(probes_module, "probe_database", probe)
    yield probe
