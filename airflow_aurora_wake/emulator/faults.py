"""Fault injection on the AWS side: which injected error, if any, answers an RDS or Data API call."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from airflow_aurora_wake.emulator.config import Faults
from airflow_aurora_wake.emulator.wire import Response, json_error, query_error

#: ``Faults.server_error_status`` -> AWS error code and message.
_SERVER_ERRORS = {
    500: (
        "InternalFailure",
        "The request processing has failed because of an unknown error, exception or failure.",
    ),
    503: ("ServiceUnavailable", "Service is unavailable. Please try again later."),
}

#: ``ClusterSpec.data_api_resume_answer`` -> rds-data error code, HTTP status (botocore's model)
#: and message ({instance} and {secret} are filled in). Users report each while a cluster resumes.
_DATA_API_RESUME_ANSWERS = {
    "resuming": (
        "DatabaseResumingException",
        400,
        "The Aurora DB instance {instance} is resuming after being auto-paused. "
        "Please wait a few seconds and try again.",
    ),
    # Serverless v1's classic answer while it scales up from 0 ACU (the MySQL JDBC driver's text).
    "communications-link": (
        "BadRequestException",
        400,
        "Communications link failure\n\nThe last packet sent successfully to the server was 0 "
        "milliseconds ago. The driver has not received any packets from the server.",
    ),
    "starting-up": (
        "DatabaseErrorException",
        400,
        "Database error code: 0. Message: FATAL: the database system is starting up",
    ),
    "statement-timeout": ("StatementTimeoutException", 400, "Request timed out"),
    "unavailable": ("DatabaseUnavailableException", 504, "The writer instance {instance} isn't available."),
    "secrets-timeout": (
        "SecretsErrorException",
        400,
        "Error fetching secret {secret} : Secrets Manager request timed out",
    ),
}


def data_api_resume_answer(answer: str, identifier: str, secret_arn: str) -> Response:
    """The rds-data error a resuming cluster answers (``ClusterSpec.data_api_resume_answer``).

    :param answer: one of ``config.DATA_API_RESUME_ANSWERS``.
    :param identifier: the cluster.
    :param secret_arn: the request's ``secretArn`` (named by the secrets time-out).
    """
    code, status, message = _DATA_API_RESUME_ANSWERS[answer]
    return json_error(code, message.format(instance=f"{identifier}-instance-1", secret=secret_arn), status)


class FaultInjector:
    """The faults in force, and the decision for each call; thread-safe.

    :param faults: the faults to inject from the start.
    :param account_id: the emulator's account (named in ``AccessDenied`` messages).
    """

    def __init__(self, faults: Faults, account_id: str) -> None:
        self.account_id = account_id
        self._lock = threading.Lock()
        self._injected: Counter[str] = Counter()
        self.set(faults)

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._faults

    def set(self, faults: Faults) -> None:
        """Replace the faults; the throttle window and the 5xx burst restart now.

        :param faults: the new faults.
        """
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._set_at = time.time()
            self._server_errors_left = faults.server_errors

    def injected(self) -> dict[str, int]:
        """Injected RDS error code -> how many times."""
        with self._lock:
            return dict(self._injected)

    def rds_fault(self, action: str, identifier: str | None, region: str) -> Response | None:
        """The injected error for this RDS call, if any (deny, then throttle, then 5xx).

        :param action: the RDS action.
        :param identifier: the cluster the call names, if any.
        :param region: the region of the call.
        """
        with self._lock:
            faults = self._faults
            if faults.denies("rds", action):
                account = self.account_id
                resource = f"cluster:{identifier}" if identifier else "*"
                return self._inject(
                    "AccessDenied",
                    f"User: arn:aws:iam::{account}:user/testing is not authorized to perform: "
                    f"rds:{action} on resource: arn:aws:rds:{region}:{account}:{resource} because no "
                    f"identity-based policy allows the rds:{action} action",
                    403,
                )
            if faults.throttle_fraction > 0:
                in_window = (
                    faults.throttle_seconds is None or time.time() < self._set_at + faults.throttle_seconds
                )
                if in_window and self._rng.random() < faults.throttle_fraction:
                    return self._inject("Throttling", "Rate exceeded", 400)
            if self._server_errors_left > 0:
                self._server_errors_left -= 1
                code, message = _SERVER_ERRORS[faults.server_error_status]
                return self._inject(code, message, faults.server_error_status)
        return None

    def data_api_fault(self, action: str) -> Response | None:
        """The injected error for this rds-data call, if any (only denials apply to it).

        :param action: the rds-data action, for example ``"ExecuteStatement"``.
        """
        if not self._faults.denies("rds-data", action):
            return None
        return json_error(
            "AccessDeniedException",
            f"User: arn:aws:iam::{self.account_id}:user/testing is not authorized to perform: "
            f"rds-data:{action} because no identity-based policy allows the rds-data:{action} action",
            403,
        )

    def _inject(self, code: str, message: str, status: int) -> Response:
        self._injected[code] += 1
        return query_error(code, message, status, sender=status < 500)
