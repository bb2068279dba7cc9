"""moto's side of the readers: a reader's ``DBInstance`` reports its own endpoint and status.

Like the cluster's objects in :mod:`.motoglue`, each reader's moto instance has its class swapped
to a subclass whose ``status``, ``address`` and ``port`` read the emulator's
:class:`~.instances.ReaderInstance`, so ``DescribeDBInstances`` (and the cluster's
``DBClusterMembers``, with its ``PromotionTier``) show the live state with moto's own serializer.
"""

from __future__ import annotations

from typing import Any

from moto.rds.models import DBInstanceClustered

from airflow_aurora_wake.emulator import motoglue
from airflow_aurora_wake.emulator.instances import ReaderInstance

__all__ = ["EmulatedReaderInstance", "create_reader_instance"]

_READER_ATTRIBUTE = "_aurora_emulator_reader"


def _reader(obj: object) -> ReaderInstance:
    reader = obj.__dict__.get(_READER_ATTRIBUTE)
    assert isinstance(reader, ReaderInstance)
    return reader


def _status(self: Any) -> str:
    reader = _reader(self)
    # Apply a due transition's side effects (a listener opening) before anyone can see it.
    reader.cluster.observe()
    return reader.status()


def _moto_write(attribute: str) -> Any:
    def put(self: Any, value: Any) -> None:
        # moto's own writes (its transitions) are replaced by the emulator's model.
        self.__dict__[attribute] = value

    return put


class EmulatedReaderInstance(motoglue.EmulatedDBInstance):
    """A moto clustered ``DBInstance`` whose endpoint and status are a reader's own."""

    status = property(_status, _moto_write("_moto_status"))
    address = property(lambda self: _reader(self).host)
    port = property(lambda self: _reader(self).port, _moto_write("_moto_port"))


# moto's serializer derives attribute aliases from the class name (see motoglue).
EmulatedReaderInstance.__name__ = DBInstanceClustered.__name__


def create_reader_instance(account_id: str, reader: ReaderInstance) -> None:
    """Create a reader's moto instance in its cluster (a member with its ``PromotionTier``).

    :param account_id: the emulator's account.
    :param reader: the reader's model.
    """
    spec = reader.cluster.spec
    instance = motoglue.rds_backend(account_id, spec.region).create_db_instance(
        {
            "db_instance_identifier": reader.identifier,
            "db_cluster_identifier": spec.identifier,
            "engine": spec.engine,
            "db_instance_class": "db.serverless" if spec.kind == "serverless-v2" else "db.r6g.large",
            "promotion_tier": reader.reader.promotion_tier,
        }
    )
    assert isinstance(instance, DBInstanceClustered)
    instance.__dict__[_READER_ATTRIBUTE] = reader
    # The cluster's model: whatever reads an instance's model (log files) finds its cluster.
    motoglue._attach(instance, reader.cluster, EmulatedReaderInstance)
