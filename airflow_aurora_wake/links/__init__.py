"""Operator extra links of the Aurora Wake provider (registered in ``get_provider_info``)."""

from __future__ import annotations
