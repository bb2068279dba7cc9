"""Airflow task groups of the Aurora Wake provider."""

from __future__ import annotations
