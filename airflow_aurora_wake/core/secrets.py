"""The master login a cluster keeps in Secrets Manager (``ManageMasterUserPassword``).

RDS stores a managed master password as a JSON secret (``username``, ``password``) and shows
its ARN in ``DescribeDBClusters`` (``MasterUserSecret.SecretArn``). It is read here over the
caller's async client, in the caller's event loop (the triggerer's too), bounded by the time
the caller gives. The value lives in memory only: never in a repr, a log line, an exception
message, XCom or a trigger's kwargs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_aurora_wake.core.errors import DatabaseConfigurationError, raise_if_fatal

__all__ = [
    "GET_SECRET_VALUE",
    "ManagedLogin",
    "SecretLogin",
    "SecretReader",
    "hide_secret_values",
    "parse_login_secret",
    "read_login_secret",
]

#: The IAM action that reads a secret (also what the Data API needs for its secret).
GET_SECRET_VALUE = "secretsmanager:GetSecretValue"

#: ``read(arn)`` returns Secrets Manager's ``GetSecretValue`` answer for the secret, for example
#: ``lambda arn: client.get_secret_value(SecretId=arn)`` over an aiobotocore client.
SecretReader = Callable[[str], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class SecretLogin:
    """What a managed master secret holds.

    :param username: the ``username`` member, if any.
    :param password: the ``password`` member (never in repr).
    :param version_id: the secret version read, if Secrets Manager named it.
    """

    username: str | None
    password: str = field(repr=False)
    version_id: str | None = None


def parse_login_secret(answer: Mapping[str, Any], *, cluster: str, arn: str) -> SecretLogin:
    """Read the login out of a ``GetSecretValue`` answer.

    :param answer: the answer.
    :param cluster: the cluster the secret belongs to, for messages.
    :param arn: the secret's ARN, for messages.
    :raises DatabaseConfigurationError: when it is not a JSON object with a text ``password``
        (the message never shows the value).
    """
    text = answer.get("SecretString") if isinstance(answer, Mapping) else None
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    password = value.get("password") if isinstance(value, dict) else None
    if not isinstance(password, str) or not password:
        raise DatabaseConfigurationError(
            f"the managed master secret {arn} of DB cluster {cluster!r} is not a JSON object with "
            'a text \'password\' (RDS writes {"username": ..., "password": ...}): check that the '
            "ARN is the cluster's MasterUserSecret and that nothing else rewrote the secret"
        )
    assert isinstance(value, dict)
    username = value.get("username")
    version = answer.get("VersionId")
    return SecretLogin(
        username=username if isinstance(username, str) and username else None,
        password=password,
        version_id=version if isinstance(version, str) else None,
    )


async def read_login_secret(
    read: SecretReader, arn: str, *, timeout: float, cluster: str, region: str | None = None
) -> SecretLogin:
    """One ``GetSecretValue`` of a managed master secret, bounded by ``timeout``.

    :param read: makes the call.
    :param arn: the secret's ARN.
    :param timeout: seconds the call may take (what is left of the caller's deadline).
    :param cluster: the cluster, for messages.
    :param region: the region, for messages.
    :raises AuroraWakeError: what waiting cannot fix: the action denied (naming
        ``secretsmanager:GetSecretValue``), a secret deleted or unreadable.
    :raises TimeoutError: when Secrets Manager did not answer within ``timeout``.
    :raises Exception: a failure that may pass (throttling, 5xx, network), unchanged, so the
        caller's classification retries it.
    """
    try:
        answer = await asyncio.wait_for(read(arn), timeout=max(timeout, 0.0))
    except asyncio.TimeoutError:
        raise TimeoutError(f"Secrets Manager did not answer GetSecretValue within {timeout:.1f} s") from None
    except Exception as exc:
        raise_if_fatal(exc, where=GET_SECRET_VALUE, cluster=cluster, region=region)
        raise
    return parse_login_secret(answer, cluster=cluster, arn=arn)


class _DropSecretValues(logging.Filter):
    """Drop botocore's DEBUG ``Response body:`` lines that carry a secret value."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith("Response body")):
            return True
        body = record.args[0] if isinstance(record.args, tuple) and record.args else record.args
        text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
        return "SecretString" not in text and "SecretBinary" not in text


#: The loggers that write whole response bodies at DEBUG (botocore's and aiobotocore's parsers).
_RESPONSE_BODY_LOGGERS = ("botocore.parsers", "aiobotocore.parsers")


def hide_secret_values() -> None:
    """Keep secret values out of logs even when botocore logs at DEBUG (idempotent).

    botocore and aiobotocore log every response body at DEBUG, and the body of
    ``GetSecretValue`` is the secret. Only those lines are dropped, and only once a managed
    secret is in use.
    """
    for name in _RESPONSE_BODY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _DropSecretValues) for existing in logger.filters):
            logger.addFilter(_DropSecretValues())


class ManagedLogin:
    """A cluster's managed master secret for the probes of one wait: read once, cached, and
    read again once when the server refuses the password.

    Managed rotation can hand out the previous password for a moment, so a refused password
    read just before a rotation finished is worth one more read; an unchanged secret means the
    password really is refused.

    :param arn: the secret's ARN (``MasterUserSecret.SecretArn``).
    :param read: makes the ``GetSecretValue`` call.
    :param cluster: the cluster, for messages.
    :param region: the region, for messages.
    """

    def __init__(self, arn: str, read: SecretReader, *, cluster: str, region: str | None = None) -> None:
        hide_secret_values()
        self.arn = arn
        self.cluster = cluster
        self.region = region
        self._read = read
        self._login: SecretLogin | None = None
        self._seen: list[str] = []  # every password read, so messages can be cleaned of them

    def __repr__(self) -> str:
        return f"ManagedLogin(arn={self.arn!r}, cluster={self.cluster!r})"

    @property
    def username(self) -> str | None:
        """The secret's user, once read."""
        return self._login.username if self._login is not None else None

    @property
    def passwords(self) -> tuple[str, ...]:
        """Every password read so far, to keep out of messages (never show them)."""
        return tuple(self._seen)

    async def login(self, *, timeout: float) -> SecretLogin:
        """The login, read on first use.

        :param timeout: seconds a read may take.
        """
        if self._login is None:
            await self._fetch(timeout)
        assert self._login is not None
        return self._login

    async def reread(self, *, timeout: float) -> bool:
        """Read the secret again; return whether the password changed.

        :param timeout: seconds the read may take.
        """
        before = self._login
        await self._fetch(timeout)
        assert self._login is not None
        return before is None or self._login.password != before.password

    async def _fetch(self, timeout: float) -> None:
        login = await read_login_secret(
            self._read, self.arn, timeout=timeout, cluster=self.cluster, region=self.region
        )
        if login.password not in self._seen:
            self._seen.append(login.password)
        self._login = login
