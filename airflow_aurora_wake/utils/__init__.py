"""Pieces the operator, the sensor and the trigger share (Airflow-side, unlike the core)."""
