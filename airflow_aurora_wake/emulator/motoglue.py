"""Everything that touches moto's internals: backend access, live cluster objects, serializing.

moto serializes a ``DBCluster`` by reading its attributes (the botocore member name in
snake_case). Swapping each emulated cluster's ``__class__`` to a subclass whose ``status``,
``capacity``, ``endpoint``, ``port``... properties read the emulator's model makes every moto
response (DescribeDBClusters, ModifyDBCluster, DeleteDBCluster, ...) show the live state,
without copying moto's serializer.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from moto.core.base_backend import BackendDict
from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.rds.models import DBCluster, DBInstanceClustered, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends

from airflow_aurora_wake.emulator.config import ENGINES, ClusterSpec
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


def _live(read: Callable[[ClusterModel], Any], moto_attribute: str | None = None) -> Any:
    """A property that reads the attached model; moto's own writes go to ``moto_attribute``.

    :param read: computes the value from the model.
    :param moto_attribute: where a write by moto lands (``None``: the property is read-only).
    """

    def get(self: _ModelBacked) -> Any:
        return read(self._model)

    def put(self: _ModelBacked, value: Any) -> None:
        # moto's own transitions (start/stop/modify) are replaced by the model.
        self.__dict__[str(moto_attribute)] = value

    return property(get, put if moto_attribute else None)


def _observed_status(model: ClusterModel) -> str:
    model.observe()
    return model.status()


def _capacity(model: ClusterModel) -> int | None:
    capacity = model.current_capacity()
    return None if capacity is None else int(capacity)


def _v1_scaling(model: ClusterModel) -> dict[str, Any] | None:
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


def config_value(config: Any, name: str) -> Any:
    """A scaling setting from moto's dict, whose keys are ``MinCapacity`` or ``min_capacity``.

    :param config: the scaling configuration (``None`` or a non-mapping gives ``None``).
    :param name: the botocore member name, for example ``"SecondsUntilAutoPause"``.
    """
    getter = getattr(config, "get", None)
    if getter is None:
        return None
    value = getter(name)
    return getter(re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()) if value is None else value


class EmulatedDBCluster(_ModelBacked, DBCluster):
    """A moto ``DBCluster`` whose live fields come from the emulator's model."""

    status = _live(_observed_status, "_status")
    capacity = _live(_capacity)
    endpoint = _live(lambda model: model.host)
    reader_endpoint = _live(lambda model: model.reader_host or model.host)
    port = _live(lambda model: model.port, "_moto_port")
    http_endpoint_enabled = _live(lambda model: model.spec.data_api)
    iam_database_authentication_enabled = _live(lambda model: model.spec.iam_auth)
    scaling_configuration_info = _live(_v1_scaling)

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
        self._model.update_v2_scaling(
            config_value(value, "MinCapacity"),
            config_value(value, "MaxCapacity"),
            config_value(value, "SecondsUntilAutoPause"),
        )


class EmulatedDBInstance(_ModelBacked, DBInstanceClustered):
    """A moto clustered ``DBInstance`` whose endpoint and status come from the cluster's model."""

    status = _live(_observed_status, "_moto_status")
    address = _live(lambda model: model.host)
    port = _live(lambda model: model.port, "_moto_port")


# moto's serializer derives attribute aliases from the class name ("DBClusterArn" -> "arn"
# for a class named DBCluster), so the subclasses keep their parents' names.
EmulatedDBCluster.__name__ = DBCluster.__name__
EmulatedDBInstance.__name__ = DBInstanceClustered.__name__


def _attach(obj: DBCluster | DBInstanceClustered, model: ClusterModel, cls: type) -> None:
    if "port" in obj.__dict__:
        obj.__dict__["_moto_port"] = obj.__dict__.pop("port")
    obj.__dict__[_MODEL_ATTRIBUTE] = model
    obj.__class__ = cls


def attach_cluster(cluster: DBCluster, model: ClusterModel) -> None:
    """Make a moto cluster object report the model's live state.

    :param cluster: moto's object.
    :param model: the emulator's model.
    """
    _attach(cluster, model, EmulatedDBCluster)


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
        # moto creates the MasterUserSecret (with a value of its own, replaced by the emulator).
        "manage_master_user_password": spec.manage_master_user_password,
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
        _attach(instance, model, EmulatedDBInstance)


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
            _attach(instance, model, EmulatedDBInstance)


def find_cluster(account_id: str, region: str, identifier: str) -> DBCluster | None:
    """moto's cluster object, or ``None``.

    :param account_id: the emulator's account.
    :param region: the region.
    :param identifier: the cluster identifier.
    """
    return rds_backend(account_id, region).clusters.get(identifier)


def instance_model(account_id: str, region: str, instance_identifier: str | None) -> ClusterModel | None:
    """The model of the cluster an instance belongs to (``None``: unknown, or not emulated).

    :param account_id: the emulator's account.
    :param region: the region.
    :param instance_identifier: the ``DBInstanceIdentifier`` (case-insensitive, as in RDS).
    """
    if not instance_identifier:
        return None
    databases = rds_backend(account_id, region).databases
    instance = databases.get(instance_identifier) or databases.get(instance_identifier.lower())
    return None if instance is None else model_of(instance)


def adoption_spec(cluster: DBCluster, region: str, *, data_api: bool) -> ClusterSpec | None:
    """The spec of a cluster created through the API, or ``None`` for an engine not emulated.

    :param cluster: moto's object, not attached to a model yet.
    :param region: its region.
    :param data_api: whether the create call enabled the Data API.
    """
    engine = str(cluster.engine)
    if engine not in ENGINES:
        return None
    v2 = getattr(cluster, "serverless_v2_scaling_configuration", None)
    if cluster.engine_mode == "serverless":
        kind, config = "serverless-v1", getattr(cluster, "scaling_configuration", None)
    elif v2:
        kind, config = "serverless-v2", v2
    else:
        kind, config = "provisioned", None
    low, high = config_value(config, "MinCapacity"), config_value(config, "MaxCapacity")
    pause = config_value(config, "SecondsUntilAutoPause")
    base: dict[str, Any] = {
        "identifier": str(cluster.db_cluster_identifier),
        "kind": kind,
        "engine": engine,
        "state": "available",
        "data_api": data_api,
        "iam_auth": bool(getattr(cluster, "iam_auth", False)),
        "region": region,
        "seconds_until_auto_pause": int(pause) if pause is not None else 300,
    }
    try:
        return ClusterSpec(
            **base,
            min_capacity=float(low) if low is not None else None,
            max_capacity=float(high) if high is not None else None,
        )
    except ValueError:
        # moto's own defaults (v1 min 1 for PostgreSQL) are not valid Aurora values.
        return ClusterSpec(**base)


def delete_cluster(account_id: str, model: ClusterModel) -> None:
    """Remove a model's moto cluster and instances.

    :param account_id: the emulator's account.
    :param model: the cluster's model.
    """
    backend = rds_backend(account_id, model.spec.region)
    for name, instance in list(backend.databases.items()):
        if model_of(instance) is model:
            backend.databases.pop(name, None)
    backend.clusters.pop(model.identifier, None)


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
    return str(secret_value(account_id, region, secret_id).get("SecretString") or "")


def master_user_secret_arn(account_id: str, region: str, identifier: str) -> str | None:
    """The ARN of a cluster's ``MasterUserSecret`` (``ManageMasterUserPassword``), if any.

    :param account_id: the emulator's account.
    :param region: the region.
    :param identifier: the cluster identifier.
    """
    cluster = find_cluster(account_id, region, identifier)
    secret = getattr(cluster, "master_user_secret", None) if cluster is not None else None
    return str(secret.secret_arn) if secret is not None else None


def put_secret_string(account_id: str, region: str, secret_id: str, text: str) -> None:
    """Store a new current version of a secret (the previous one becomes ``AWSPREVIOUS``).

    :param account_id: the emulator's account.
    :param region: the region.
    :param secret_id: ARN or name.
    :param text: the new ``SecretString``.
    """
    secrets_backend(account_id, region).put_secret_value(
        secret_id=secret_id,
        secret_string=text,
        secret_binary=None,  # type: ignore[arg-type]
        client_request_token=None,  # type: ignore[arg-type]
        version_stages=["AWSCURRENT"],
    )


def secret_value(account_id: str, region: str, secret_id: str) -> dict[str, Any]:
    """moto's ``GetSecretValue`` answer for a secret's current version (raises when missing).

    :param account_id: the emulator's account.
    :param region: the region.
    :param secret_id: ARN or name.
    """
    return dict(
        secrets_backend(account_id, region).get_secret_value(
            secret_id=secret_id,
            version_id=None,  # type: ignore[arg-type]
            version_stage=None,  # type: ignore[arg-type]
        )
    )


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
