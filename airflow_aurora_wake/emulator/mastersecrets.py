"""Managed master passwords: the secret RDS keeps for a cluster, and its rotation.

A cluster with ``manage_master_user_password`` gets moto's ``MasterUserSecret``, whose value the
emulator replaces with the real login of the upstream DSN. A rotation models the brief window
in which Secrets Manager still hands out the previous password: the real server's password
cannot change under the tests, so the new password is the real one again (a new version) and the
previous one is made up; ``GetSecretValue`` calls made in the window get the previous one,
which the server refuses, as a database whose password just changed refuses the old one.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.emulator import motoglue
from airflow_aurora_wake.emulator.wire import Response, json_response

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator.backend import EmulatorBackend

_GET_SECRET_VALUE = "secretsmanager.GetSecretValue"


@dataclass
class _Stale:
    """The previous value still handed out after a rotation."""

    text: str
    version_id: str
    reads_left: int
    until: float


@dataclass
class _Managed:
    """One cluster's managed master secret."""

    identifier: str
    region: str
    arn: str
    reads: int = 0
    stale_reads: int = 0
    rotations: int = 0
    stale: _Stale | None = None


class MasterSecrets:
    """The managed master secrets of one emulator's clusters; thread-safe.

    :param account_id: the emulator's moto account.
    :param clock: the wall clock.
    """

    def __init__(self, account_id: str, clock: Callable[[], float] = time.time) -> None:
        self.account_id = account_id
        self.clock = clock
        self._lock = threading.Lock()
        self._by_cluster: dict[str, _Managed] = {}

    def create(self, identifier: str, region: str, username: str, password: str) -> str:
        """Give a new cluster's ``MasterUserSecret`` the real login; return the secret's ARN.

        :param identifier: the cluster, created with ``manage_master_user_password``.
        :param region: its region.
        :param username: the real login.
        :param password: its password.
        """
        arn = motoglue.master_user_secret_arn(self.account_id, region, identifier)
        if arn is None:
            raise ValueError(f"cluster {identifier!r} has no MasterUserSecret in moto")
        text = json.dumps({"username": username, "password": password})
        motoglue.put_secret_string(self.account_id, region, arn, text)
        with self._lock:
            self._by_cluster[identifier.lower()] = _Managed(identifier, region, arn)
        return arn

    def _managed(self, identifier: str, region: str | None) -> _Managed:
        """The cluster's entry; a cluster created through the API (moto's own secret) is adopted."""
        key = identifier.lower()
        with self._lock:
            managed = self._by_cluster.get(key)
        if managed is not None:
            return managed
        arn = motoglue.master_user_secret_arn(self.account_id, region or "", identifier) if region else None
        if arn is None:
            raise ValueError(
                f"cluster {identifier!r} has no managed master password: create it with "
                "manage_master_user_password=True (CLI: manage-master-user-password=true)"
            )
        with self._lock:
            return self._by_cluster.setdefault(key, _Managed(identifier, str(region), arn))

    def arn(self, identifier: str, region: str | None = None) -> str | None:
        """The ARN of a cluster's managed master secret, or ``None``.

        :param identifier: the cluster.
        :param region: its region (to find a cluster created through the API).
        """
        try:
            return self._managed(identifier, region).arn
        except ValueError:
            return None

    def rotate(
        self, identifier: str, region: str, *, stale_reads: int = 1, stale_seconds: float = 0.0
    ) -> dict[str, Any]:
        """Rotate a cluster's managed master password, as RDS's managed rotation does.

        The current value gets a new version (the real login again); the next ``stale_reads``
        ``GetSecretValue`` calls, and every call within ``stale_seconds``, still get the
        previous, made-up password.

        :param identifier: the cluster.
        :param region: its region.
        :param stale_reads: calls that get the previous password (reads are deterministic in tests).
        :param stale_seconds: seconds in which every call gets it.
        :raises ValueError: a cluster without a managed password, or a negative window.
        """
        if isinstance(stale_reads, bool) or not isinstance(stale_reads, int) or stale_reads < 0:
            raise ValueError(f"stale_reads must be a whole number >= 0, got {stale_reads!r}")
        if isinstance(stale_seconds, bool) or not isinstance(stale_seconds, int | float) or stale_seconds < 0:
            raise ValueError(f"stale_seconds must be a number >= 0, got {stale_seconds!r}")
        managed = self._managed(identifier, region)
        current = motoglue.secret_value(self.account_id, managed.region, managed.arn)
        login = json.loads(str(current.get("SecretString") or "{}"))
        previous = json.dumps({**login, "password": f"previous-{secrets.token_hex(8)}"})
        motoglue.put_secret_string(self.account_id, managed.region, managed.arn, json.dumps(login))
        with self._lock:
            managed.rotations += 1
            managed.stale = _Stale(
                previous,
                str(current.get("VersionId") or uuid.uuid4()),
                stale_reads,
                self.clock() + stale_seconds,
            )
        return self.state(identifier)

    def state(self, identifier: str, region: str | None = None) -> dict[str, Any]:
        """What the emulator knows of a cluster's managed secret (never its value).

        :param identifier: the cluster.
        :param region: its region (to find a cluster created through the API).
        """
        managed = self._managed(identifier, region)
        with self._lock:
            stale = managed.stale
            return {
                "arn": managed.arn,
                "reads": managed.reads,
                "stale_reads": managed.stale_reads,
                "rotations": managed.rotations,
                "stale_reads_left": stale.reads_left if stale else 0,
                "stale_until": stale.until if stale else None,
            }

    def answer(self, environ: dict[str, Any], body: bytes, *, denied: bool) -> Response | None:
        """Count a ``GetSecretValue`` of a managed secret; answer it in a rotation's window.

        :param environ: the request's WSGI environment.
        :param body: its JSON body.
        :param denied: the faults deny ``secretsmanager:GetSecretValue``.
        :returns: the denial, the previous value's answer, or ``None`` (moto answers).
        """
        if environ.get("HTTP_X_AMZ_TARGET") != _GET_SECRET_VALUE:
            return None
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        secret_id = str(request.get("SecretId") or "")
        if denied:
            # Secrets Manager speaks JSON 1.1: botocore reads the code from the body's __type.
            message = (
                f"User: arn:aws:iam::{self.account_id}:user/testing is not authorized to perform: "
                f"secretsmanager:GetSecretValue on resource: {secret_id} because no identity-based "
                "policy allows the secretsmanager:GetSecretValue action"
            )
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
            return 400, headers, json.dumps({"__type": "AccessDeniedException", "Message": message}).encode()
        with self._lock:
            managed = next((item for item in self._by_cluster.values() if _names(item.arn, secret_id)), None)
            if managed is None:
                return None
            managed.reads += 1
            stale = managed.stale
            pinned = request.get("VersionId") or request.get("VersionStage") not in (None, "AWSCURRENT")
            if stale is None or pinned or (stale.reads_left <= 0 and self.clock() >= stale.until):
                return None
            stale.reads_left = max(stale.reads_left - 1, 0)
            managed.stale_reads += 1
        answer = motoglue.secret_value(self.account_id, managed.region, managed.arn)
        answer.update(SecretString=stale.text, VersionId=stale.version_id, VersionStages=["AWSCURRENT"])
        return json_response(answer)


def _names(arn: str, secret_id: str) -> bool:
    """Whether ``secret_id`` (an ARN, a name, or an ARN without its random suffix) is ``arn``."""
    name = arn.split(":secret:", 1)[1]
    return secret_id in (arn, name, name.rsplit("-", 1)[0]) or arn.startswith(secret_id + "-")


class ManagedPasswordMethods:
    """``AuroraEmulator``'s methods for managed master passwords (see :class:`MasterSecrets`)."""

    _backend: EmulatorBackend

    def master_user_secret_arn(self, identifier: str) -> str | None:
        """The ARN of a cluster's managed master secret (``MasterUserSecret``), or ``None``.

        :param identifier: the cluster.
        """
        model = self._backend.get_cluster(identifier)
        return self._backend.master_secrets.arn(model.identifier, model.spec.region)

    def rotate_master_password(
        self, identifier: str, *, stale_reads: int = 1, stale_seconds: float = 0.0
    ) -> dict[str, Any]:
        """Rotate a cluster's managed master password (see :meth:`MasterSecrets.rotate`).

        :param identifier: the cluster.
        :param stale_reads: the next this many ``GetSecretValue`` calls get the previous password.
        :param stale_seconds: and so does every call within this many seconds.
        :returns: the secret's state (:meth:`master_user_secret_state`).
        """
        model = self._backend.get_cluster(identifier)
        return self._backend.master_secrets.rotate(
            model.identifier, model.spec.region, stale_reads=stale_reads, stale_seconds=stale_seconds
        )

    def master_user_secret_state(self, identifier: str) -> dict[str, Any]:
        """``arn``, ``reads`` (``GetSecretValue`` calls), ``stale_reads`` (those answered with the
        previous password), ``rotations``, ``stale_reads_left``, ``stale_until``; never the value.

        :param identifier: the cluster.
        """
        model = self._backend.get_cluster(identifier)
        return self._backend.master_secrets.state(model.identifier, model.spec.region)
