"""Airflow connections that point a user's own Airflow at a running emulator.

One ``aws`` connection for the AWS endpoint, and one ``postgres`` or ``mysql`` connection per
cluster for its database endpoint, rendered as ``airflow connections add`` commands or as
``export AIRFLOW_CONN_<ID>='{json}'`` lines (Airflow's JSON connection format), quoted for a
POSIX shell. Plain data: nothing here imports Airflow or moto (the CLI parser imports it).

A database connection never carries a password: the emulator does not know the upstream's
password and must not print one taken from an upstream DSN.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_aurora_wake.emulator.config import ClusterEndpoint, Upstream, parse_upstream

#: The renderings of ``--print-connections``.
RENDERINGS = ("airflow-cli", "env")
DEFAULT_AWS_CONN_ID = "aws_default"
#: moto accepts any credentials; these are its documented dummy ones, not a secret.
AWS_TEST_CREDENTIALS = "testing"
#: Airflow connection type by engine family.
_CONN_TYPES = {"postgresql": "postgres", "mysql": "mysql"}
_NOT_IN_CONN_ID = re.compile(r"[^A-Za-z0-9]")
# Letters, digits and "_" only: the id must also make a valid AIRFLOW_CONN_<ID> variable name.
_PORTABLE_CONN_ID = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class ConnectionDefinition:
    """One Airflow connection, as ``airflow connections add`` and ``AIRFLOW_CONN_<ID>`` take it.

    :param conn_id: the connection id (letters, digits and ``_``).
    :param conn_type: ``aws``, ``postgres`` or ``mysql``.
    :param host: the host, or ``None``.
    :param port: the port, or ``None``.
    :param login: the login, or ``None``.
    :param password: the password, or ``None`` (only the AWS connection has one: moto's dummy).
    :param schema: the database, or ``None``.
    :param extra: the extra fields (``endpoint_url``, ``region_name`` for AWS).
    """

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def env_var(self) -> str:
        """The environment variable Airflow reads this connection from."""
        return "AIRFLOW_CONN_" + self.conn_id.upper()

    def as_airflow_json(self) -> dict[str, Any]:
        """Airflow's JSON connection form (``conn_type``, ``host``, ...), unset fields left out."""
        fields = {
            "conn_type": self.conn_type,
            "host": self.host,
            "port": self.port,
            "login": self.login,
            "password": self.password,
            "schema": self.schema,
        }
        data: dict[str, Any] = {name: value for name, value in fields.items() if value is not None}
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    def env_line(self) -> str:
        """``export AIRFLOW_CONN_<ID>='{json}'``, quoted for a POSIX shell."""
        return f"export {self.env_var}={shlex.quote(json.dumps(self.as_airflow_json()))}"

    def airflow_cli_command(self) -> str:
        """``airflow connections add <id> --conn-type ...``, quoted for a POSIX shell."""
        argv = ["airflow", "connections", "add", self.conn_id, "--conn-type", self.conn_type]
        for flag, value in (
            ("--conn-host", self.host),
            ("--conn-port", self.port),
            ("--conn-login", self.login),
            ("--conn-password", self.password),
            ("--conn-schema", self.schema),
        ):
            if value is not None:
                argv += [flag, str(value)]
        if self.extra:
            argv += ["--conn-extra", json.dumps(self.extra)]
        return shlex.join(argv)


def conn_id_for(identifier: str) -> str:
    """The connection id of a cluster: its identifier with every other character than an ASCII
    letter or digit replaced by ``_`` (``demo-pg`` -> ``demo_pg``).

    :param identifier: the cluster identifier.
    """
    return _NOT_IN_CONN_ID.sub("_", identifier)


def check_conn_id(conn_id: str) -> str:
    """Return ``conn_id`` if it works both with ``airflow connections add`` and as ``AIRFLOW_CONN_<ID>``.

    :param conn_id: the connection id.
    :raises ValueError: naming the id and the characters allowed.
    """
    if not _PORTABLE_CONN_ID.fullmatch(conn_id):
        raise ValueError(
            f"connection id {conn_id!r} must be ASCII letters, digits and '_' only, so that "
            f"AIRFLOW_CONN_{conn_id.upper()} is a valid environment variable name"
        )
    return conn_id


def aws_connection(conn_id: str, endpoint_url: str, region: str) -> ConnectionDefinition:
    """The ``aws`` connection of the emulator's AWS endpoint, with moto's dummy credentials.

    :param conn_id: the connection id.
    :param endpoint_url: the emulator's AWS endpoint.
    :param region: the region its clients use.
    """
    return ConnectionDefinition(
        conn_id=check_conn_id(conn_id),
        conn_type="aws",
        login=AWS_TEST_CREDENTIALS,
        password=AWS_TEST_CREDENTIALS,
        extra={"endpoint_url": endpoint_url, "region_name": region},
    )


def database_connection(endpoint: ClusterEndpoint, upstream: Upstream) -> ConnectionDefinition:
    """The database connection of one cluster: its endpoint, the upstream's user and database.

    The upstream's password, if its DSN has one, is left out on purpose.

    :param endpoint: where the cluster's database endpoint listens.
    :param upstream: the real server it fronts.
    """
    return ConnectionDefinition(
        conn_id=conn_id_for(endpoint.identifier),
        conn_type=_CONN_TYPES[upstream.engine],
        host=endpoint.host,
        port=endpoint.port,
        login=upstream.user,
        schema=upstream.database,
    )


def definitions_for(
    endpoint_url: str,
    region: str,
    clusters: Iterable[tuple[ClusterEndpoint, str]],
    *,
    aws_conn_id: str = DEFAULT_AWS_CONN_ID,
) -> list[ConnectionDefinition]:
    """The AWS connection first, then one database connection per cluster.

    :param endpoint_url: the emulator's AWS endpoint.
    :param region: the region of the AWS connection.
    :param clusters: each cluster's endpoint and upstream DSN.
    :param aws_conn_id: the AWS connection's id.
    :raises ValueError: for an ``aws_conn_id`` that is not letters, digits and ``_``, or two
        connections that would get the same id (``a-b`` and ``a.b``, or a cluster named like
        the AWS connection).
    """
    definitions = [aws_connection(aws_conn_id, endpoint_url, region)]
    owners = {aws_conn_id.upper(): "the AWS connection"}
    for endpoint, upstream_dsn in clusters:
        definition = database_connection(endpoint, parse_upstream(upstream_dsn))
        # Airflow looks environment connections up by the upper-cased id.
        key = definition.conn_id.upper()
        if key in owners:
            raise ValueError(
                f"cluster {endpoint.identifier!r} would get connection id {definition.conn_id!r}, "
                f"which {owners[key]} already has; choose another aws_conn_id or cluster identifier"
            )
        owners[key] = f"cluster {endpoint.identifier!r}"
        definitions.append(definition)
    return definitions


def render_connections(
    definitions: Sequence[ConnectionDefinition], rendering: str, *, ca_file: str | None = None
) -> str:
    """Shell lines that define the connections, after ``#`` comments, ending with an empty line.

    :param definitions: the connections.
    :param rendering: ``airflow-cli`` (``airflow connections add`` commands) or ``env``
        (``export AIRFLOW_CONN_<ID>=...`` lines).
    :param ca_file: the emulator's CA file, named in a comment for users who verify TLS.
    :raises ValueError: for an unknown rendering.
    """
    if rendering == "airflow-cli":
        add_password = "add --conn-password"
        lines = [
            "# Airflow connections for this emulator. 'airflow connections add' refuses an id that",
            "# exists: run 'airflow connections delete ID' first.",
        ]
    elif rendering == "env":
        add_password = 'add a "password" field'
        lines = ["# Airflow connections for this emulator, for the environment of every Airflow component."]
    else:
        raise ValueError(f"unknown rendering {rendering!r}; use one of {', '.join(RENDERINGS)}")
    lines += [
        f"# The database connections carry no password: {add_password} if the server behind",
        "# needs one. The emulator does not check database passwords (the real server behind it",
        "# does, or does not).",
    ]
    if ca_file:
        lines += [
            f"# TLS is offered, not required. To verify it, trust {ca_file} (while the emulator runs):",
            f'# postgres extra {{"sslmode": "verify-full", "sslrootcert": "{ca_file}"}},',
            f'# mysql extra {{"ssl": {{"ca": "{ca_file}"}}}}.',
        ]
    for definition in definitions:
        lines.append(
            definition.airflow_cli_command() if rendering == "airflow-cli" else definition.env_line()
        )
    return "\n".join(lines) + "\n\n"
