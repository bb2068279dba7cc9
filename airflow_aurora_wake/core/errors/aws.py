"""What an AWS answer means for a wait: RDS and Data API error codes, and botocore's own errors.

The tables follow the facts file and botocore's service models; :mod:`.classify` dispatches here.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_aurora_wake.core.errors.exceptions import (
    AuroraWakeError,
    AwsApiError,
    AwsCredentialsError,
    AwsPermissionError,
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseAuthenticationError,
    DatabaseConfigurationError,
    ErrorVerdict,
    InvalidParameterError,
)
from airflow_aurora_wake.core.errors.redaction import redact, safe_error_text

__all__ = ["aws_error_code", "classify_aws"]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
PERMISSION_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
#: ``DBInstanceNotReadyFault`` (wire code ``DBInstanceNotReady``, botocore's model): "an attempt
#: to download or examine log files didn't succeed because an Aurora Serverless v2 instance was
#: paused". Both spellings are accepted, as a proxy or an SDK may report the shape's name.
INSTANCE_PAUSED_CODES = frozenset({"DBInstanceNotReady", "DBInstanceNotReadyFault"})
# Data API errors that mean "the database is not ready yet": the call started or waits on a resume.
DATA_API_RETRY_CODES = frozenset(
    {"DatabaseResumingException", "DatabaseUnavailableException", "ServiceUnavailableError"}
)


def _action_name(where: str) -> str:
    """``rds:DescribeDBClusters`` -> ``rds:DescribeDBClusters``; ``rds-data`` -> its action."""
    if where == "rds-data":
        return "rds-data:ExecuteStatement"
    return where


def classify_aws(
    exc: Exception, *, where: str, cluster: str | None, region: str | None
) -> ErrorVerdict | None:
    """The verdict for an AWS answer or a botocore error; ``None`` when ``exc`` is neither.

    :param exc: the exception.
    :param where: ``rds:<Action>``, ``rds-data`` or ``secretsmanager:GetSecretValue``.
    :param cluster: the cluster identifier, for messages.
    :param region: the region, for messages.
    """
    code, http_status, message = _aws_error_parts(exc)
    if code is not None:
        return _classify_aws(code, http_status, message, where=where, cluster=cluster, region=region)
    return _classify_botocore_local(exc)


def _aws_error_parts(exc: BaseException) -> tuple[str | None, int | None, str]:
    """Read code, HTTP status and message from a botocore ``ClientError`` (duck-typed)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None, None, ""
    error = response.get("Error")
    if not isinstance(error, Mapping) or not error.get("Code"):
        return None, None, ""
    metadata = response.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    return (
        str(error.get("Code")),
        status if isinstance(status, int) else None,
        redact(str(error.get("Message") or "")),
    )


def _classify_aws(
    code: str,
    http_status: int | None,
    message: str,
    *,
    where: str,
    cluster: str | None,
    region: str | None,
) -> ErrorVerdict:
    reason = f"{code}: {message}" if message else code
    if code in THROTTLING_CODES:
        return ErrorVerdict(retry=True, reason=code, throttled=True)
    if code == "DBClusterNotFoundFault":
        error: AuroraWakeError = ClusterNotFoundError(cluster or "(unknown)", region)
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code in PERMISSION_CODES:
        return ErrorVerdict(retry=False, reason=code, error=AwsPermissionError(_action_name(where), message))
    if code in CREDENTIAL_CODES:
        error = AwsCredentialsError(
            f"AWS rejected the credentials ({code}): check the access key, secret key, session "
            "token and their expiry"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code == "HttpEndpointNotEnabledException" or (
        code == "BadRequestException" and "httpendpoint is not enabled" in message.lower()
    ):
        error = DataApiNotEnabledError(
            f"the Data API is not enabled on DB cluster {cluster!r}: enable the Data API (HTTP "
            "endpoint) on the cluster, or reach the database over a connection instead of the Data API"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code in DATA_API_RETRY_CODES:
        return ErrorVerdict(retry=True, reason=f"{code} (the database is resuming)")
    if code in INSTANCE_PAUSED_CODES:
        # Proof of "paused", not a failure: describing log files also starts the resume.
        return ErrorVerdict(
            retry=True, reason="DBInstanceNotReadyFault (the instance is paused)", proves_paused=True
        )
    if where == "rds-data":
        return _classify_data_api(code, message, cluster=cluster)
    if where.startswith("secretsmanager:"):
        return _classify_secrets(code, http_status, message, where=where, cluster=cluster)
    if code in ("InvalidDBClusterCapacityFault", "InvalidParameterValue", "InvalidParameterCombination"):
        parameter = "capacity" if where == "rds:ModifyCurrentDBClusterCapacity" else where
        error = InvalidParameterError(parameter, message or code, f"AWS rejected the request ({code})")
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code == "InvalidDBClusterStateFault":
        error = ClusterStateError(cluster or "(unknown)", "in a state that refuses " + where, message or None)
        return ErrorVerdict(retry=False, reason=code, error=error)
    if (http_status is not None and http_status >= 500) or code in (
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    ):
        return ErrorVerdict(retry=True, reason=f"AWS {http_status or ''} {code}".replace("  ", " "))
    error = AwsApiError(f"{where} failed for DB cluster {cluster!r}: {reason}")
    return ErrorVerdict(retry=False, reason=code, error=error)


#: Data API answers that a resume causes, by code and (where the code alone is ambiguous) by a
#: phrase of the message: all mean "not ready yet" (field reports; botocore does not retry them).
_DATA_API_RESUMING: tuple[tuple[str, str], ...] = (
    # Serverless v1's classic answer while it scales up from 0.
    ("BadRequestException", "communications link failure"),
    ("DatabaseErrorException", "starting up"),
    ("DatabaseErrorException", "communications link failure"),
    ("StatementTimeoutException", ""),
    ("SecretsErrorException", "timed out"),
    ("InternalServerErrorException", ""),
)


def _classify_data_api(code: str, message: str, *, cluster: str | None) -> ErrorVerdict:
    lowered = message.lower()
    if code == "ForbiddenException":
        error: AuroraWakeError = AwsPermissionError(
            "rds-data:ExecuteStatement / secretsmanager:GetSecretValue", message
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if any(code == resuming and phrase in lowered for resuming, phrase in _DATA_API_RESUMING):
        return ErrorVerdict(retry=True, reason=f"{code} (the database is resuming)")
    if code == "DatabaseNotFoundException":
        # botocore's model: the cluster has no DB instance (not a wrong database name).
        error = ClusterStateError(
            cluster or "(unknown)",
            "without a DB instance",
            "the Data API found no DB instance in it (DatabaseNotFoundException): add a writer "
            "instance to the cluster, or wait for a cluster that has one",
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if "does not exist" in lowered and "database" in lowered:
        error = DatabaseConfigurationError(
            f"the Data API could not find the database of DB cluster {cluster!r} ({message}): "
            "check the database name"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if "password authentication failed" in lowered or "access denied" in lowered:
        error = DatabaseAuthenticationError(
            f"the database of DB cluster {cluster!r} answered the Data API, so it is awake, but "
            "rejected the login: check the user and password stored in the Data API secret"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    error = AwsApiError(
        f"the Data API call for DB cluster {cluster!r} failed: {code}: {message}; check the "
        "secret ARN, the database name and the cluster ARN"
    )
    return ErrorVerdict(retry=False, reason=code, error=error)


def _classify_secrets(
    code: str, http_status: int | None, message: str, *, where: str, cluster: str | None
) -> ErrorVerdict:
    """Secrets Manager's answers to reading a cluster's managed master secret.

    AWS's messages for these codes name the secret, never its value.
    """
    if code == "DecryptionFailure":
        error: AuroraWakeError = AwsPermissionError("kms:Decrypt", message)
        return ErrorVerdict(retry=False, reason=code, error=error)
    if code in ("ResourceNotFoundException", "InvalidRequestException"):
        # InvalidRequestException: the secret is scheduled for deletion.
        error = DatabaseConfigurationError(
            f"the managed master secret of DB cluster {cluster!r} cannot be read ({code}: {message}): "
            "check that RDS still manages the master password (ManageMasterUserPassword) and that "
            "the secret is not deleted, or log in with a password of your own instead"
        )
        return ErrorVerdict(retry=False, reason=code, error=error)
    if (http_status is not None and http_status >= 500) or code == "InternalServiceError":
        reason = f"Secrets Manager {http_status or ''} {code}".replace("  ", " ")
        return ErrorVerdict(retry=True, reason=reason)
    error = AwsApiError(
        f"{where} failed for the managed master secret of DB cluster {cluster!r}: {code}: {message}"
    )
    return ErrorVerdict(retry=False, reason=code, error=error)


def _classify_botocore_local(exc: Exception) -> ErrorVerdict | None:
    """botocore errors raised before or instead of an HTTP answer."""
    try:
        from botocore import exceptions as botocore_exceptions
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    error: AuroraWakeError
    if isinstance(exc, botocore_exceptions.NoCredentialsError | botocore_exceptions.PartialCredentialsError):
        error = AwsCredentialsError(
            f"no usable AWS credentials were found ({type(exc).__name__}): configure AWS "
            "credentials (an access key, a profile, or an instance or task role)"
        )
        return ErrorVerdict(retry=False, reason=type(exc).__name__, error=error)
    if isinstance(exc, botocore_exceptions.NoRegionError):
        error = InvalidParameterError(
            "region_name",
            None,
            "no AWS region is configured: give the region, or set a default one (AWS_DEFAULT_REGION "
            "or the profile's region)",
        )
        return ErrorVerdict(retry=False, reason="NoRegionError", error=error)
    if isinstance(
        exc,
        botocore_exceptions.EndpointConnectionError
        | botocore_exceptions.ConnectionClosedError
        | botocore_exceptions.ConnectTimeoutError
        | botocore_exceptions.ReadTimeoutError
        | botocore_exceptions.HTTPClientError,
    ):
        return ErrorVerdict(retry=True, reason=f"AWS endpoint unreachable ({type(exc).__name__})")
    if isinstance(exc, botocore_exceptions.ParamValidationError):
        error = InvalidParameterError("request", safe_error_text(exc), "the RDS request was malformed")
        return ErrorVerdict(retry=False, reason="ParamValidationError", error=error)
    return None


def aws_error_code(exc: BaseException) -> str | None:
    """Return the AWS error code of a botocore ``ClientError`` (``None`` for anything else).

    :param exc: any exception.
    """
    return _aws_error_parts(exc)[0]
