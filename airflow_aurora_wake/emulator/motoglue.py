"""Everything that touches moto's internals: backend access, live cluster objects, serializing.

moto serializes a ``DBCluster`` by reading its attributes (the botocore member name in
snake_case). Swapping each emulated cluster's ``__class__`` to a subclass whose ``status``,
``capacity``, ``endpoint``, ``port``... properties read the emulator's model makes every moto
response (DescribeDBClusters, ModifyDBCluster, DeleteDBCluster, ...) show the live state,
without copying moto's serializer.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.rds.models import DBCluster, DBInstanceClustered, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends

from airflow_aurora_wake.emulator.model import ClusterModel

_MODEL_ATTRIBUTE = "_aurora_emulator_model"


def rds_backend(account_id: str, region: str) -> RDSBackend:
    """moto's RDS backend of the emulator's account in ``region``.

    :param account_id: the emulator's account.
    :param region: the region.
    """
    return rds_backends[account_id][region]


def secrets_backend(account_id: str, region: str) -> SecretsManagerBackend:
    """moto's Secrets Manager backend of the emulator's account in ``region``.

    :param account_id: the emulator's account.
    :param region: the region.
    """
    return secretsmanager_backends[account_id][region]


def model_of(obj: object) -> ClusterModel | None:
    """The emulator model attached to a moto cluster or instance, if any.

    :param obj: a moto model object.
    """
    model = obj.__dict__.get(_MODEL_ATTRIBUTE)
    return model if isinstance(model, ClusterModel) else None


class _ModelBacked:
    """The emulator model attached to this moto object (see :func:`model_of`)."""

    @property
    def _model(self) -> ClusterModel:
        model = model_of(self)
        assert model is not None
        return model


class EmulatedDBCluster(_ModelBacked, DBCluster):
    """A moto ``DBCluster`` whose live fields come from the emulator's model."""

    @property  # type: ignore[override]
    def status(self) -> str:
        self._model.observe()
        return self._model.status()

    @status.setter
    def status(self, value: str) -> None:
        # moto's own transitions (start/stop/modify) are replaced by the model.
        self.__dict__["_status"] = value

    @property
    def capacity(self) -> float | None:
        capacity = self._model.current_capacity()
        return None if capacity is None else int(capacity)

    @property  # type: ignore[override]
    def endpoint(self) -> str:
        return self._model.host

    @property  # type: ignore[override]
    def reader_endpoint(self) -> str:
        return self._model.host

    @property  # type: ignore[override]
    def port(self) -> int:
        return self._model.port

    @port.setter
    def port(self, value: int) -> None:
        self.__dict__["_moto_port"] = value

    @property  # type: ignore[override]
    def http_endpoint_enabled(self) -> bool:
        return self._model.spec.data_api

    @property  # type: ignore[override]
    def iam_database_authentication_enabled(self) -> bool:
        return self._model.spec.iam_auth

    @property  # type: ignore[override]
    def scaling_configuration_info(self) -> dict[str, Any] | None:  # type: ignore[override]
        model = self._model
        if model.spec.kind != "serverless-v1":
            return None
        return {
            "MinCapacity": int(model.min_capacity),
            "MaxCapacity": int(model.max_capacity),
            "AutoPause": True,
            "SecondsUntilAutoPause": model.seconds_until_auto_pause,
            "TimeoutAction": "RollbackCapacityChange",
            "SecondsBeforeTimeout": 300,
        }

    @property
    def serverless_v2_scaling_configuration(self) -> dict[str, Any] | None:
        model = self._model
        if model.spec.kind != "serverless-v2":
            return None
        config: dict[str, Any] = {"MinCapacity": model.min_capacity, "MaxCapacity": model.max_capacity}
        if model.min_capacity == 0:
            config["SecondsUntilAutoPause"] = model.seconds_until_auto_pause
        return config

    @serverless_v2_scaling_configuration.setter
    def serverless_v2_scaling_configuration(self, value: Any) -> None:
        # ModifyDBCluster sets this attribute: changing the range is an AWS-documented waker.
        if value is None or _MODEL_ATTRIBUTE not in self.__dict__:
            return

        def pick(name: str, snake: str) -> Any:
            try:
                found = value.get(name)
                return value.get(snake) if found is None else found
            except AttributeError:
                return None

        self._model.update_v2_scaling(
            pick("MinCapacity", "min_capacity"),
            pick("MaxCapacity", "max_capacity"),
            pick("SecondsUntilAutoPause", "seconds_until_auto_pause"),
        )


class EmulatedDBInstance(_ModelBacked, DBInstanceClustered):
    """A moto clustered ``DBInstance`` whose endpoint and status come from the cluster's model."""

    @property  # type: ignore[override]
    def status(self) -> str:
        self._model.observe()
        return self._model.instance_status()

    @status.setter
    def status(self, value: str) -> None:
        self.__dict__["_moto_status"] = value

    @property  # type: ignore[override]
    def address(self) -> str:
        return self._model.host

    @property  # type: ignore[override]
    def port(self) -> int:
        return self._model.port

    @port.setter
    def port(self, value: int) -> None:
        self.__dict__["_moto_port"] = value


# moto's serializer derives attribute aliases from the class name ("DBClusterArn" -> "arn"
# for a class named DBCluster), so the subclasses keep their parents' names.
EmulatedDBCluster.__name__ = DBCluster.__name__
EmulatedDBInstance.__name__ = DBInstanceClustered.__name__


def attach_cluster(cluster: DBCluster, model: ClusterModel) -> None:
    """Make a moto cluster object report the model's live state.

    :param cluster: moto's object.
    :param model: the emulator's model.
    """
    if "port" in cluster.__dict__:
        cluster.__dict__["_moto_port"] = cluster.__dict__.pop("port")
    cluster.__dict__[_MODEL_ATTRIBUTE] = model
    cluster.__class__ = EmulatedDBCluster


def attach_instance(instance: DBInstanceClustered, model: ClusterModel) -> None:
    """Make a moto clustered instance report the cluster model's endpoint and status.

    :param instance: moto's object.
    :param model: the emulator's model of the instance's cluster.
    """
    if "port" in instance.__dict__:
        instance.__dict__["_moto_port"] = instance.__dict__.pop("port")
    instance.__dict__[_MODEL_ATTRIBUTE] = model
    instance.__class__ = EmulatedDBInstance  # type: ignore[type-abstract]


def create_cluster(account_id: str, model: ClusterModel, master_username: str) -> None:
    """Create the moto cluster (and a writer instance unless v1) for a new emulated cluster.

    :param account_id: the emulator's account.
    :param model: the new model (spec, port, ...).
    :param master_username: reported ``MasterUsername``.
    """
    spec = model.spec
    backend = rds_backend(account_id, spec.region)
    kwargs: dict[str, Any] = {
        "db_cluster_identifier": spec.identifier,
        "engine": spec.engine,
        "master_username": master_username,
        "master_user_password": "emulated-password",
        "enable_iam_database_authentication": spec.iam_auth,
        "engine_mode": "serverless" if spec.kind == "serverless-v1" else "provisioned",
    }
    if spec.kind == "serverless-v2":
        kwargs["serverless_v2_scaling_configuration"] = {
            "MinCapacity": model.min_capacity,
            "MaxCapacity": model.max_capacity,
        }
    cluster = backend.create_db_cluster(kwargs)
    attach_cluster(cluster, model)
    if spec.kind != "serverless-v1":
        instance = backend.create_db_instance(
            {
                "db_instance_identifier": f"{spec.identifier}-instance-1",
                "db_cluster_identifier": spec.identifier,
                "engine": spec.engine,
                "db_instance_class": "db.serverless" if spec.kind == "serverless-v2" else "db.r6g.large",
            }
        )
        assert isinstance(instance, DBInstanceClustered)
        attach_instance(instance, model)


def attach_cluster_instances(account_id: str, model: ClusterModel) -> None:
    """Attach every clustered instance of the model's cluster that is not attached yet.

    :param account_id: the emulator's account.
    :param model: the cluster's model.
    """
    backend = rds_backend(account_id, model.spec.region)
    for instance in list(backend.databases.values()):
        if (
            isinstance(instance, DBInstanceClustered)
            and not isinstance(instance, EmulatedDBInstance)
            and str(instance.db_cluster_identifier).lower() == model.identifier.lower()
        ):
            attach_instance(instance, model)


def find_cluster(account_id: str, region: str, identifier: str) -> DBCluster | None:
    """moto's cluster object, or ``None``.

    :param account_id: the emulator's account.
    :param region: the region.
    :param identifier: the cluster identifier.
    """
    return rds_backend(account_id, region).clusters.get(identifier)


def create_secret(account_id: str, region: str, name: str, secret: dict[str, Any]) -> str:
    """Store a JSON secret in moto's Secrets Manager and return its ARN.

    :param account_id: the emulator's account.
    :param region: the region.
    :param name: the secret's name.
    :param secret: the JSON object to store.
    """
    answer = secrets_backend(account_id, region).create_secret(
        name=name,
        secret_string=json.dumps(secret),
        secret_binary=None,
        description="created by the airflow-aurora-wake emulator",
        tags=None,
        kms_key_id=None,
        client_request_token=None,
        replica_regions=[],
        force_overwrite=False,
    )
    return str(json.loads(answer)["ARN"])


def read_secret(account_id: str, region: str, secret_id: str) -> str:
    """The ``SecretString`` of a secret (raises moto's errors when missing).

    :param account_id: the emulator's account.
    :param region: the region.
    :param secret_id: ARN or name.
    """
    value = secrets_backend(account_id, region).get_secret_value(
        secret_id=secret_id,
        version_id=None,  # type: ignore[arg-type]
        version_stage=None,  # type: ignore[arg-type]
    )
    return str(value.get("SecretString") or "")


_SERIALIZE_LOCK = threading.Lock()


def serialize_rds(action: str, result: dict[str, Any], request_id: str) -> tuple[int, dict[str, str], str]:
    """Serialize an RDS result (for example ``{"DBCluster": cluster}``) exactly as moto does.

    :param action: the RDS action, for example ``"StartDBCluster"``.
    :param result: the result members.
    :param request_id: the request id to report.
    """
    service_model = get_service_model("rds")
    operation_model = service_model.operation_model(action)
    serializer_cls = get_serializer_class("rds", "query")
    serializer = serializer_cls(
        operation_model=operation_model,
        pretty_print=False,
        value_picker=XFormedAttributePicker(
            response_transformers=getattr(RDSResponse, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        ),
    )
    with _SERIALIZE_LOCK:
        serialized = serializer.serialize(result)
    body = serialized["body"]
    text = body.decode() if isinstance(body, bytes) else str(body)
    headers = {str(k): str(v) for k, v in dict(serialized.get("headers") or {}).items()}
    headers.setdefault("Content-Type", "text/xml")
    text = text.replace("<RequestId></RequestId>", f"<RequestId>{request_id}</RequestId>")
    return int(serialized.get("status_code") or 200), headers, text


def forget_account(account_id: str) -> None:
    """Drop every moto backend of ``account_id`` (all services), so nothing leaks between runs.

    :param account_id: the emulator's account.
    """
    for backend_dict in list(BackendDict._instances):  # type: ignore[misc]
        account = backend_dict.get(account_id)
        if account is None:
            continue
        try:
            account.reset()
        finally:
            backend_dict.pop(account_id, None)
