"""The facts about Aurora engines that several layers need, each written once.

Standard library only: the emulator's command line imports this before moto is installed.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DEFAULT_PORTS",
    "ENGINE_NAMES",
    "PASSWORD_ENV",
    "SSL_MODES",
    "SSL_MODES_REQUIRING_TLS",
    "SSL_MODES_VERIFYING",
    "TIMEOUT_ACTIONS",
    "V1_CAPACITIES",
    "V2_ACU_STEP",
    "V2_MAX_ACU",
    "EngineFamily",
    "engine_family",
]

#: The two wire protocols the probes speak.
EngineFamily = Literal["postgresql", "mysql"]

#: Every engine or scheme name that means one family: RDS engine names (``aurora`` is Aurora
#: MySQL 5.6), DSN schemes and what users type.
ENGINE_NAMES: dict[str, EngineFamily] = {
    "aurora-postgresql": "postgresql",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "aurora-mysql": "mysql",
    "aurora": "mysql",
    "mysql": "mysql",
    "mariadb": "mysql",
}

DEFAULT_PORTS: dict[EngineFamily, int] = {"postgresql": 5432, "mysql": 3306}

#: The environment variable each engine's own clients read a password from (psql, mysql).
PASSWORD_ENV: dict[EngineFamily, str] = {"postgresql": "PGPASSWORD", "mysql": "MYSQL_PWD"}

#: libpq's ``sslmode`` names; both probes understand them (aiomysql through the core's mapping).
SSL_MODES: tuple[str, ...] = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: The sslmodes under which no connection may go without TLS.
SSL_MODES_REQUIRING_TLS: tuple[str, ...] = ("require", "verify-ca", "verify-full")
#: The sslmodes that also verify the server's certificate.
SSL_MODES_VERIFYING: tuple[str, ...] = ("verify-ca", "verify-full")

#: Serverless v2 capacities are multiples of 0.5 ACU, up to 256 (the scaling configuration's
#: MinCapacity and MaxCapacity).
V2_ACU_STEP = 0.5
V2_MAX_ACU = 256.0

#: Valid Serverless v1 capacities per engine family (botocore documentation of
#: ``ModifyCurrentDBClusterCapacity``).
V1_CAPACITIES: dict[EngineFamily, tuple[int, ...]] = {
    "mysql": (1, 2, 4, 8, 16, 32, 64, 128, 256),
    "postgresql": (2, 4, 8, 16, 32, 64, 192, 384),
}

#: ``ModifyCurrentDBClusterCapacity`` ``TimeoutAction`` values. AWS's default is
#: ``ForceApplyCapacityChange``; ``RollbackCapacityChange`` never drops connections.
TIMEOUT_ACTIONS: tuple[str, ...] = ("RollbackCapacityChange", "ForceApplyCapacityChange")


def engine_family(engine: str) -> EngineFamily | None:
    """Return the wire protocol of an engine name, or ``None`` for engines the core cannot probe.

    :param engine: ``aurora-postgresql``, ``aurora-mysql``, ``aurora`` (MySQL 5.6), ``postgres``,
        ``mysql``, ...
    """
    return ENGINE_NAMES.get(engine.strip().lower())
