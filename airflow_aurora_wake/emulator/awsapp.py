"""The AWS endpoint: a WSGI app in front of moto's server app.

It reads the service from the SigV4 credential scope and the RDS ``Action`` from the form
body, answers the actions the emulator owns (``ModifyCurrentDBClusterCapacity``,
``StartDBCluster``, ``StopDBCluster``, rds-data ``ExecuteStatement``), the injected faults and
the admin routes under ``/_emulator/`` itself, and forwards everything else to moto, with the
emulator's private account id in the ``x-moto-account-id`` header so that two emulators in one
process never see each other's resources.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from airflow_aurora_wake.emulator import motoglue
from airflow_aurora_wake.emulator.config import V1_CAPACITIES, ClusterSpec
from airflow_aurora_wake.emulator.dataapi import StatementError
from airflow_aurora_wake.emulator.model import ClusterModel, ClusterStateError, Phase

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator.emulator import AuroraEmulator

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Response = tuple[int, dict[str, str], bytes]
RDS_XMLNS = "http://rds.amazonaws.com/doc/2014-10-31/"
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


def cluster_name(identifier: str | None) -> str | None:
    """The plain identifier from an identifier or a cluster ARN.

    :param identifier: ``"sales"`` or ``"arn:aws:rds:us-east-1:123:cluster:sales"``.
    """
    if not identifier:
        return None
    if identifier.startswith("arn:") and ":cluster:" in identifier:
        return identifier.rsplit(":cluster:", 1)[1]
    return identifier


def query_error(code: str, message: str, status: int, *, sender: bool = True) -> Response:
    """A query-protocol (RDS) error response.

    :param code: the error code, for example ``"DBClusterNotFoundFault"``.
    :param message: the message.
    :param status: the HTTP status.
    :param sender: ``Sender`` (client) or ``Receiver`` (server) fault.
    """
    body = (
        f'<ErrorResponse xmlns="{RDS_XMLNS}"><Error><Type>{"Sender" if sender else "Receiver"}</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, body.encode()


def json_error(code: str, message: str, status: int) -> Response:
    """A REST-JSON (rds-data) error response; botocore reads the code from the header.

    :param code: the error code, for example ``"DatabaseResumingException"``.
    :param message: the message.
    :param status: the HTTP status.
    """
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": code,
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return status, headers, json.dumps({"message": message}).encode()


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON response.

    :param data: the JSON value.
    :param status: the HTTP status.
    """
    return status, {"Content-Type": "application/json"}, json.dumps(data, default=str).encode()


class AwsEndpointApp:
    """The WSGI application of the emulator's AWS endpoint.

    :param emulator: the owning emulator.
    :param inner: moto's WSGI app (``DomainDispatcherApplication``).
    """

    def __init__(
        self, emulator: AuroraEmulator, inner: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
    ):
        self.emulator = emulator
        self.inner = inner

    # -- WSGI ------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        try:
            if path.startswith("/_emulator"):
                return self._send(start_response, self._admin(environ, path))
            body = self._read_body(environ)
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.emulator.account_id
            region, service = self._scope(environ)
            if service == "rds-data":
                return self._send(start_response, self._rds_data(path, body, region))
            if service == "rds":
                return self._rds(environ, start_response, body, region)
            return self.inner(environ, start_response)
        except Exception:  # the endpoint must answer, whatever went wrong in the emulator
            log.exception("emulator failed to handle %s %s", environ.get("REQUEST_METHOD"), path)
            return self._send(
                start_response, query_error("InternalFailure", "emulator error", 500, sender=False)
            )

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes:
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        length = environ.get("CONTENT_LENGTH") or ""
        body = stream.read(int(length)) if length.strip().isdigit() else stream.read()
        # moto reads the body again: give it a fresh stream.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return bytes(body)

    def _scope(self, environ: dict[str, Any]) -> tuple[str, str | None]:
        match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "") or "")
        if match is None:
            return self.emulator.region, None
        return match.group(1), match.group(2).lower()

    @staticmethod
    def _send(start_response: StartResponse, response: Response) -> list[bytes]:
        status, headers, body = response
        headers = {**headers, "Content-Length": str(len(body))}
        start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
        return [body]

    # -- RDS --------------------------------------------------------------------------------

    def _rds(
        self, environ: dict[str, Any], start_response: StartResponse, body: bytes, region: str
    ) -> Iterable[bytes]:
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        action = form.get("Action", "")
        identifier = cluster_name(form.get("DBClusterIdentifier"))
        emulator = self.emulator
        emulator._count_rds_call(action, identifier)
        fault = emulator._rds_fault(action, identifier, region)
        if fault is not None:
            return self._send(start_response, fault)
        owned = {
            "ModifyCurrentDBClusterCapacity": self._modify_capacity,
            "StartDBCluster": self._start,
            "StopDBCluster": self._stop,
        }.get(action)
        if owned is not None:
            return self._send(start_response, owned(form, identifier, region))
        captured: dict[str, str] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.inner(environ, capture)
        if captured.get("status", "").startswith("200"):
            try:
                self._after_moto(action, form, identifier, region)
            except Exception:
                log.exception("emulator could not follow up %s on %s", action, identifier)
        return result

    def _after_moto(self, action: str, form: dict[str, str], identifier: str | None, region: str) -> None:
        emulator = self.emulator
        if action == "DeleteDBCluster" and identifier:
            model = emulator._find_model(identifier, region)
            if model is not None:
                model.mark_deleted()
                emulator._sync(model.identifier)
        elif action in ("CreateDBCluster", "RestoreDBClusterFromSnapshot") and identifier:
            emulator._adopt_cluster(identifier, region, data_api=form.get("EnableHttpEndpoint") == "true")
        elif action == "CreateDBInstance":
            cluster = cluster_name(form.get("DBClusterIdentifier"))
            model = emulator._find_model(cluster, region) if cluster else None
            if model is not None:
                motoglue.attach_cluster_instances(emulator.account_id, model)

    def _model_or_404(self, identifier: str | None, region: str) -> ClusterModel | Response:
        model = self.emulator._find_model(identifier, region) if identifier else None
        if model is None:
            return query_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", 404)
        return model

    def _serialize_cluster(self, action: str, model: ClusterModel) -> Response:
        cluster = motoglue.find_cluster(self.emulator.account_id, model.spec.region, model.identifier)
        if cluster is None:
            return query_error("DBClusterNotFoundFault", f"DBCluster {model.identifier} not found.", 404)
        status, headers, text = motoglue.serialize_rds(action, {"DBCluster": cluster}, str(uuid.uuid4()))
        return status, headers, text.encode()

    def _start(self, form: dict[str, str], identifier: str | None, region: str) -> Response:
        model = self._model_or_404(identifier, region)
        if not isinstance(model, ClusterModel):
            return model
        try:
            model.start()
        except ClusterStateError as exc:
            return query_error("InvalidDBClusterStateFault", str(exc), 400)
        self.emulator._sync(model.identifier)
        return self._serialize_cluster("StartDBCluster", model)

    def _stop(self, form: dict[str, str], identifier: str | None, region: str) -> Response:
        model = self._model_or_404(identifier, region)
        if not isinstance(model, ClusterModel):
            return model
        try:
            model.stop()
        except ClusterStateError as exc:
            return query_error("InvalidDBClusterStateFault", str(exc), 400)
        # The endpoint refuses before the answer reaches the caller.
        self.emulator._sync(model.identifier)
        return self._serialize_cluster("StopDBCluster", model)

    def _modify_capacity(self, form: dict[str, str], identifier: str | None, region: str) -> Response:
        model = self._model_or_404(identifier, region)
        if not isinstance(model, ClusterModel):
            return model
        spec = model.spec
        if spec.kind != "serverless-v1":
            # The exact AWS wording for a v2/provisioned cluster is not documented; the code
            # (InvalidDBClusterStateFault) is what callers branch on.
            return query_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {model.identifier} is not an Aurora Serverless v1 DB cluster (EngineMode "
                "provisioned); ModifyCurrentDBClusterCapacity applies only to Aurora Serverless v1 "
                "DB clusters.",
                400,
            )
        try:
            timeout = int(form.get("SecondsBeforeTimeout", "300"))
        except ValueError:
            timeout = -1
        if not 10 <= timeout <= 600:
            return query_error(
                "InvalidParameterValue",
                f"SecondsBeforeTimeout {form.get('SecondsBeforeTimeout')} is not valid: "
                "it must be from 10 through 600.",
                400,
            )
        timeout_action = form.get("TimeoutAction", "ForceApplyCapacityChange")
        if timeout_action not in ("ForceApplyCapacityChange", "RollbackCapacityChange"):
            return query_error(
                "InvalidParameterValue",
                f"TimeoutAction {timeout_action} is not valid: "
                "use ForceApplyCapacityChange or RollbackCapacityChange.",
                400,
            )
        raw_capacity = form.get("Capacity")
        try:
            capacity = float(raw_capacity) if raw_capacity is not None else model.min_capacity
        except ValueError:
            return query_error("InvalidParameterValue", f"Capacity {raw_capacity} is not a number.", 400)
        valid = V1_CAPACITIES[spec.engine]
        if capacity not in valid:
            return query_error(
                "InvalidDBClusterCapacityFault",
                f"Capacity {raw_capacity} is not a valid {spec.engine} capacity; valid values are "
                f"{', '.join(map(str, valid))}.",
                400,
            )
        if not model.min_capacity <= capacity <= model.max_capacity:
            return query_error(
                "InvalidDBClusterCapacityFault",
                f"Capacity {int(capacity)} is outside the DB cluster's capacity range "
                f"{int(model.min_capacity)}..{int(model.max_capacity)}.",
                400,
            )
        try:
            pending, current = model.modify_capacity(capacity)
        except ClusterStateError as exc:
            return query_error("InvalidDBClusterStateFault", str(exc), 400)
        body = (
            f'<ModifyCurrentDBClusterCapacityResponse xmlns="{RDS_XMLNS}">'
            "<ModifyCurrentDBClusterCapacityResult>"
            f"<DBClusterIdentifier>{escape(model.identifier)}</DBClusterIdentifier>"
            f"<PendingCapacity>{int(pending)}</PendingCapacity><CurrentCapacity>{int(current)}</CurrentCapacity>"
            f"<SecondsBeforeTimeout>{timeout}</SecondsBeforeTimeout><TimeoutAction>{timeout_action}</TimeoutAction>"
            f"</ModifyCurrentDBClusterCapacityResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            "</ResponseMetadata></ModifyCurrentDBClusterCapacityResponse>"
        )
        return 200, {"Content-Type": "text/xml"}, body.encode()

    # -- rds-data ---------------------------------------------------------------------------

    def _rds_data(self, path: str, body: bytes, region: str) -> Response:
        emulator = self.emulator
        action = {"/Execute": "ExecuteStatement"}.get(path.rstrip("/"))
        if action is None:
            return json_error(
                "BadRequestException",
                f"the emulator implements only ExecuteStatement (/Execute), not {path}",
                400,
            )
        if emulator.faults.denies("rds-data", action):
            return json_error(
                "AccessDeniedException",
                f"User: arn:aws:iam::{emulator.account_id}:user/testing is not authorized to perform: "
                f"rds-data:{action} because no identity-based policy allows the rds-data:{action} action",
                403,
            )
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return json_error("BadRequestException", "request body is not JSON", 400)
        resource = str(request.get("resourceArn") or "")
        identifier = cluster_name(resource)
        model = emulator._find_model(identifier, region) if identifier else None
        if model is None:
            return json_error("BadRequestException", f"Database cluster {resource} not found.", 400)
        with model.lock:
            model.data_api_calls += 1
        emulator._count_data_api(model.identifier)
        if not model.spec.data_api:
            return json_error(
                "HttpEndpointNotEnabledException",
                f"HttpEndpoint is not enabled for cluster {model.identifier}. Please refer to "
                "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.html#data-api.troubleshooting",
                400,
            )
        phase = model.advance()
        if phase is Phase.PAUSED:
            model.request_resume("data-api")
            phase = model.advance()
        if phase is Phase.RESUMING:
            return json_error(
                "DatabaseResumingException",
                f"The Aurora DB instance {model.identifier}-instance-1 is resuming after being auto-paused. "
                "Please wait a few seconds and try again.",
                400,
            )
        if phase not in (Phase.AVAILABLE, Phase.SCALING):
            return json_error(
                "BadRequestException",
                f"DB cluster {model.identifier} is {model.status()}; "
                "the Data API needs an available cluster.",
                400,
            )
        secret_arn = str(request.get("secretArn") or "")
        try:
            secret = json.loads(motoglue.read_secret(emulator.account_id, region, secret_arn))
            user, password = str(secret["username"]), str(secret.get("password") or "")
        except Exception:
            return json_error(
                "BadRequestException",
                f"Error fetching secret {secret_arn} : Secrets Manager can't find the specified secret, "
                "or it is not a JSON object with username and password.",
                400,
            )
        try:
            result = emulator._run_statement(
                model,
                user=user,
                password=password,
                database=request.get("database"),
                sql=str(request.get("sql") or ""),
                parameters=list(request.get("parameters") or []),
            )
        except StatementError as exc:
            return json_error("BadRequestException", str(exc), 400)
        model.data_api_activity()
        return json_response(
            result.as_response(
                include_metadata=bool(request.get("includeResultMetadata")),
                format_json=request.get("formatRecordsAs") == "JSON",
            )
        )

    # -- admin routes -----------------------------------------------------------------------

    def _admin(self, environ: dict[str, Any], path: str) -> Response:
        emulator = self.emulator
        method = environ.get("REQUEST_METHOD", "GET")
        parts = [part for part in path.split("/") if part][1:]
        try:
            payload = self._json_body(environ) if method == "POST" else {}
            if method == "GET" and parts in ([], ["state"]):
                return json_response(emulator.state())
            if method == "GET" and parts == ["health"]:
                return json_response({"ok": True})
            if method == "GET" and parts == ["counters"]:
                return json_response(emulator.counters())
            if parts == ["faults"]:
                if method == "POST":
                    emulator.set_faults(emulator.faults.merged(payload))
                return json_response(emulator.faults.as_dict())
            if method == "POST" and parts == ["clusters"]:
                endpoint = emulator.add_cluster(ClusterSpec.from_mapping(payload))
                return json_response(endpoint.as_dict(), 201)
            if len(parts) >= 2 and parts[0] == "clusters":
                identifier = parts[1]
                if emulator._find_model(identifier, None, include_deleted=True) is None:
                    return json_response({"error": f"no emulated cluster {identifier!r}"}, 404)
                if method == "GET" and len(parts) == 2:
                    return json_response(emulator.state()["clusters"][identifier])
                if method == "POST" and len(parts) == 3:
                    verb = parts[2]
                    if verb == "pause":
                        emulator.pause(identifier, paused_for=float(payload.get("paused_for", 0.0)))
                    elif verb == "wake":
                        emulator.wake(identifier)
                    elif verb == "stop":
                        emulator.stop_cluster(identifier)
                    elif verb == "delete":
                        emulator.delete(identifier)
                    elif verb == "timings":
                        emulator.set_timings(identifier, emulator._timings_of(identifier).merged(payload))
                    else:
                        return json_response({"error": f"unknown cluster action {verb!r}"}, 404)
                    return json_response(emulator.state()["clusters"][identifier])
            return json_response({"error": f"no admin route {method} {path}"}, 404)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)

    @staticmethod
    def _json_body(environ: dict[str, Any]) -> dict[str, Any]:
        raw = AwsEndpointApp._read_body(environ)
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        return data
