"""The AWS endpoint: a WSGI app in front of moto's server app.

It reads the service from the SigV4 credential scope and the RDS ``Action`` from the form
body, answers the actions the emulator owns (``ModifyCurrentDBClusterCapacity``,
``StartDBCluster``, ``StopDBCluster``, rds-data ``ExecuteStatement``, ``DescribeDBLogFiles`` of
a paused or resuming instance) and the injected faults itself, refuses the ``ModifyDBCluster``
requests AWS refuses and moto would accept (a stopped cluster, an invalid v2 scaling), hands
``/_emulator/`` to the admin routes, and forwards everything else to moto (whose
``ModifyDBCluster`` sets the model's v2 scaling), with the emulator's private account id in the
``x-moto-account-id`` header so that two emulators in one process never see each other's
resources.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from airflow_aurora_wake.core.engines import TIMEOUT_ACTIONS, V1_CAPACITIES
from airflow_aurora_wake.emulator import motoglue
from airflow_aurora_wake.emulator.counters import CallCounters
from airflow_aurora_wake.emulator.dataapi import Statement, StatementError, StatementResult
from airflow_aurora_wake.emulator.faults import FaultInjector, data_api_resume_answer
from airflow_aurora_wake.emulator.lifecycle import CONNECTABLE_PHASES
from airflow_aurora_wake.emulator.mastersecrets import MasterSecrets
from airflow_aurora_wake.emulator.model import ClusterModel, EmulatedStateError, Phase
from airflow_aurora_wake.emulator.scaling import ScalingRequestError, requested_v2_scaling
from airflow_aurora_wake.emulator.wire import (
    RDS_XMLNS,
    Response,
    StartResponse,
    json_error,
    json_response,
    query_error,
    read_body,
    send,
)

log = logging.getLogger(__name__)

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
#: The access key id of a SigV4 signature (the id only: the secret key never travels).
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


class EndpointBackend(Protocol):
    """What the AWS endpoint needs from the emulator (implemented by ``EmulatorBackend``).

    Find, adopt and sync clusters; run Data API statements; inject faults (``injector``);
    count calls (``calls``).
    """

    account_id: str
    #: The region of requests that carry no credential scope.
    region: str
    injector: FaultInjector
    calls: CallCounters
    #: Managed master secrets: counts their reads, answers a rotation's stale window.
    master_secrets: MasterSecrets

    def find_cluster(
        self, identifier: str | None, region: str | None, *, include_deleted: bool = False
    ) -> ClusterModel | None: ...

    def adopt_cluster(self, identifier: str, region: str, *, data_api: bool) -> None: ...

    def sync_cluster(self, identifier: str) -> None: ...

    def run_statement(self, model: ClusterModel, statement: Statement) -> StatementResult: ...


def tagged_cluster(resource_name: str | None) -> str | None:
    """The cluster a tagging call (``ResourceName``, an ARN) names, if it names a cluster.

    :param resource_name: ``"arn:aws:rds:us-east-1:123:cluster:sales"``, or an instance's ARN.
    """
    if not resource_name or not resource_name.startswith("arn:") or ":cluster:" not in resource_name:
        return None
    return cluster_name(resource_name)


def cluster_name(identifier: str | None) -> str | None:
    """The plain identifier from an identifier or a cluster ARN.

    :param identifier: ``"sales"`` or ``"arn:aws:rds:us-east-1:123:cluster:sales"``.
    """
    if not identifier:
        return None
    if identifier.startswith("arn:") and ":cluster:" in identifier:
        return identifier.rsplit(":cluster:", 1)[1]
    return identifier


class AwsEndpointApp:
    """The WSGI application of the emulator's AWS endpoint.

    :param backend: the emulator's clusters, faults and counters.
    :param inner: moto's WSGI app (``DomainDispatcherApplication``).
    :param admin: answers ``/_emulator/...`` requests (environ and path in, response out).
    """

    def __init__(
        self,
        backend: EndpointBackend,
        inner: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        admin: Callable[[dict[str, Any], str], Response],
    ) -> None:
        self.backend = backend
        self.inner = inner
        self.admin = admin
        # moto's ModifyDBCluster takes the cluster out of its table and puts it back (for a
        # rename): a request handled in between would answer DBClusterNotFoundFault, which RDS
        # never does. Its RDS requests are handled one at a time (each takes milliseconds).
        self._moto_rds = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        try:
            if path.startswith("/_emulator"):
                return send(start_response, self.admin(environ, path))
            body = read_body(environ)
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.backend.account_id
            region, service = self._scope(environ)
            if service == "rds-data":
                return send(start_response, self._rds_data(path, body, region))
            if service == "rds":
                return self._rds(environ, start_response, body, region)
            if service == "secretsmanager":
                denied = self.backend.injector.faults.denies("secretsmanager", "GetSecretValue")
                answer = self.backend.master_secrets.answer(environ, body, denied=denied)
                if answer is not None:
                    return send(start_response, answer)
            return self.inner(environ, start_response)
        except Exception:  # the endpoint must answer, whatever went wrong in the emulator
            log.exception("emulator failed to handle %s %s", environ.get("REQUEST_METHOD"), path)
            return send(start_response, query_error("InternalFailure", "emulator error", 500, sender=False))

    def _scope(self, environ: dict[str, Any]) -> tuple[str, str | None]:
        match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "") or "")
        if match is None:
            return self.backend.region, None
        return match.group(1), match.group(2).lower()

    # -- RDS --------------------------------------------------------------------------------

    def _rds(
        self, environ: dict[str, Any], start_response: StartResponse, body: bytes, region: str
    ) -> Iterable[bytes]:
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        action = form.get("Action", "")
        # Tagging calls name the cluster by its ARN, log file calls an instance: counted (and
        # denied) per cluster all the same.
        identifier = cluster_name(form.get("DBClusterIdentifier")) or tagged_cluster(form.get("ResourceName"))
        instance_owner = self._log_files_owner(action, form, region)
        identifier = identifier or (instance_owner.identifier if instance_owner else None)
        key = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", "") or "")
        self.backend.calls.count_rds_call(action, identifier, key.group(1) if key else None)
        fault = self.backend.injector.rds_fault(action, identifier, region)
        if fault is not None:
            return send(start_response, fault)
        if action == "ModifyDBCluster":
            refusal = self._refuse_modify(form, identifier, region)
            if refusal is not None:
                return send(start_response, refusal)
        if instance_owner is not None:
            not_ready = self._log_files_not_ready(instance_owner, form.get("DBInstanceIdentifier", ""))
            if not_ready is not None:
                return send(start_response, not_ready)
        owned = {
            "ModifyCurrentDBClusterCapacity": self._modify_capacity,
            "StartDBCluster": self._start,
            "StopDBCluster": self._stop,
        }.get(action)
        if owned is not None:
            return send(start_response, owned(form, identifier, region))
        captured: dict[str, str] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        with self._moto_rds:
            result = list(self.inner(environ, capture))
        if captured.get("status", "").startswith("200"):
            try:
                self._after_moto(action, form, identifier, region)
            except Exception:
                log.exception("emulator could not follow up %s on %s", action, identifier)
        return result

    def _after_moto(self, action: str, form: dict[str, str], identifier: str | None, region: str) -> None:
        backend = self.backend
        if action == "DeleteDBCluster" and identifier:
            model = backend.find_cluster(identifier, region)
            if model is not None:
                model.mark_deleted()
                backend.sync_cluster(model.identifier)
        elif action in ("CreateDBCluster", "RestoreDBClusterFromSnapshot") and identifier:
            backend.adopt_cluster(identifier, region, data_api=form.get("EnableHttpEndpoint") == "true")
        elif action == "CreateDBInstance":
            model = backend.find_cluster(identifier, region)
            if model is not None:
                motoglue.attach_cluster_instances(backend.account_id, model)

    def _model_or_404(self, identifier: str | None, region: str) -> ClusterModel | Response:
        model = self.backend.find_cluster(identifier, region)
        if model is None:
            return query_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", 404)
        return model

    def _refuse_modify(self, form: dict[str, str], identifier: str | None, region: str) -> Response | None:
        """AWS's answer to a ``ModifyDBCluster`` that moto would accept, if it refuses it.

        The request must not reach moto then: moto takes the cluster out of its table before it
        applies anything, and an error there would leave it out.
        """
        model = self.backend.find_cluster(identifier, region)
        if model is None:
            if not identifier:
                return None  # moto names the missing parameter
            with self._moto_rds:  # moto's table is read one request at a time, see __init__
                cluster = motoglue.find_cluster(self.backend.account_id, region, identifier)
            if cluster is None:  # moto would fail with a KeyError, answered 500
                return query_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.", 404)
            return None  # a cluster of an engine the emulator does not model: moto's alone
        try:
            model.check_modifiable()
            requested_v2_scaling(form, model.identifier, model.spec.kind, model.v2_scaling())
        except EmulatedStateError as exc:
            return query_error("InvalidDBClusterStateFault", str(exc), 400)
        except ScalingRequestError as exc:
            return query_error(exc.code, str(exc), 400)
        return None

    def _log_files_owner(self, action: str, form: dict[str, str], region: str) -> ClusterModel | None:
        """The emulated cluster whose instance a ``DescribeDBLogFiles`` call names, if any."""
        if action != "DescribeDBLogFiles":
            return None
        with self._moto_rds:  # moto's table is read one request at a time, see __init__
            return motoglue.instance_model(self.backend.account_id, region, form.get("DBInstanceIdentifier"))

    def _log_files_not_ready(self, model: ClusterModel, instance: str) -> Response | None:
        """``DescribeDBLogFiles`` of a paused instance resumes it; paused or resuming, the answer
        is ``DBInstanceNotReadyFault`` (wire code ``DBInstanceNotReady``, botocore's model; AWS's
        message is not documented). ``None``: moto lists the instance's log files."""
        phase = model.advance()
        if phase is Phase.PAUSED:
            model.request_resume("log-files")
            phase = model.advance()
        if phase is not Phase.RESUMING:
            return None
        return query_error(
            "DBInstanceNotReady",
            f"DB instance {instance} is not ready: an attempt to download or examine log files "
            "didn't succeed because the Aurora Serverless v2 instance was paused.",
            400,
        )

    def _start(self, form: dict[str, str], identifier: str | None, region: str) -> Response:
        return self._change_state("StartDBCluster", ClusterModel.start, identifier, region)

    def _stop(self, form: dict[str, str], identifier: str | None, region: str) -> Response:
        return self._change_state("StopDBCluster", ClusterModel.stop, identifier, region)

    def _change_state(
        self, action: str, change: Callable[[ClusterModel], None], identifier: str | None, region: str
    ) -> Response:
        model = self._model_or_404(identifier, region)
        if not isinstance(model, ClusterModel):
            return model
        try:
            change(model)
        except EmulatedStateError as exc:
            return query_error("InvalidDBClusterStateFault", str(exc), 400)
        # The side effects (a stopped endpoint refusing) happen before the answer reaches the caller.
        self.backend.sync_cluster(model.identifier)
        cluster = motoglue.find_cluster(self.backend.account_id, model.spec.region, model.identifier)
        if cluster is None:
            return query_error("DBClusterNotFoundFault", f"DBCluster {model.identifier} not found.", 404)
        status, headers, text = motoglue.serialize_rds(action, {"DBCluster": cluster}, str(uuid.uuid4()))
        return status, headers, text.encode()

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
        if timeout_action not in TIMEOUT_ACTIONS:
            return query_error(
                "InvalidParameterValue",
                f"TimeoutAction {timeout_action} is not valid: use {' or '.join(TIMEOUT_ACTIONS)}.",
                400,
            )
        raw_capacity = form.get("Capacity")
        try:
            capacity = float(raw_capacity) if raw_capacity is not None else model.min_capacity
        except ValueError:
            return query_error("InvalidParameterValue", f"Capacity {raw_capacity} is not a number.", 400)
        valid = V1_CAPACITIES[spec.family]
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
        except EmulatedStateError as exc:
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
        backend = self.backend
        action = {"/Execute": "ExecuteStatement"}.get(path.rstrip("/"))
        if action is None:
            return json_error(
                "BadRequestException",
                f"the emulator implements only ExecuteStatement (/Execute), not {path}",
                400,
            )
        fault = backend.injector.data_api_fault(action)
        if fault is not None:
            return fault
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return json_error("BadRequestException", "request body is not JSON", 400)
        resource = str(request.get("resourceArn") or "")
        model = backend.find_cluster(cluster_name(resource), region)
        if model is None:
            return json_error("BadRequestException", f"Database cluster {resource} not found.", 400)
        with model.lock:
            model.counters.data_api_calls += 1
        backend.calls.count_data_api_call(model.identifier)
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
            with model.lock:
                model.counters.data_api_resume_answers += 1
            return data_api_resume_answer(
                model.data_api_resume_answer, model.identifier, str(request.get("secretArn") or "")
            )
        if phase not in CONNECTABLE_PHASES:
            return json_error(
                "BadRequestException",
                f"DB cluster {model.identifier} is {model.status()}; "
                "the Data API needs an available cluster.",
                400,
            )
        secret_arn = str(request.get("secretArn") or "")
        try:
            secret = json.loads(motoglue.read_secret(backend.account_id, region, secret_arn))
            user, password = str(secret["username"]), str(secret.get("password") or "")
        except Exception:
            return json_error(
                "BadRequestException",
                f"Error fetching secret {secret_arn} : Secrets Manager can't find the specified secret, "
                "or it is not a JSON object with username and password.",
                400,
            )
        try:
            statement = Statement(
                user=user,
                password=password,
                database=request.get("database"),
                sql=str(request.get("sql") or ""),
                parameters=list(request.get("parameters") or []),
            )
            result = backend.run_statement(model, statement)
        except StatementError as exc:
            return json_error("BadRequestException", str(exc), 400)
        model.data_api_activity()
        return json_response(
            result.as_response(
                include_metadata=bool(request.get("includeResultMetadata")),
                format_json=request.get("formatRecordsAs") == "JSON",
            )
        )
