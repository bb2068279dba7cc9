"""The core's errors: the exceptions, deciding retry or fail, and keeping secrets out of text.

``exceptions`` holds the classes (each message says what to fix), ``classify`` decides whether
an exception can still pass (reading AWS answers with ``aws`` and driver and network errors with
``database``) and turns a verdict into the exception to raise, ``redaction`` removes passwords
and tokens from any text shown or logged.
"""

from __future__ import annotations

# Each module's __all__ is its public part; this package is their union.
from airflow_aurora_wake.core.errors import aws, classify, database, exceptions, redaction
from airflow_aurora_wake.core.errors.aws import *  # noqa: F403
from airflow_aurora_wake.core.errors.classify import *  # noqa: F403
from airflow_aurora_wake.core.errors.database import *  # noqa: F403
from airflow_aurora_wake.core.errors.exceptions import *  # noqa: F403
from airflow_aurora_wake.core.errors.redaction import *  # noqa: F403

__all__ = [*exceptions.__all__, *classify.__all__, *aws.__all__, *database.__all__, *redaction.__all__]
