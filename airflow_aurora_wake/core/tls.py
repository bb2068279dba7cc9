"""TLS settings for the database probes, from the options a database connection carries.

The Airflow hook reads these options from a connection's extra; they follow the conventions of
the postgres and mysql providers (``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey`` for
PostgreSQL; ``ssl`` as ``true`` or a dict with ``ca``, ``cert``, ``key``, ``check_hostname``
for MySQL). Certificate files are read in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from airflow_aurora_wake.core.engines import SSL_MODES, SSL_MODES_REQUIRING_TLS, EngineFamily
from airflow_aurora_wake.core.errors import DatabaseConfigurationError
from airflow_aurora_wake.core.probes import SslSetting

__all__ = ["option_bool", "ssl_setting_from_options"]

_TRUE_STRINGS = frozenset({"true", "1", "yes", "on"})
_FALSE_STRINGS = frozenset({"false", "0", "no", "off", ""})


def option_bool(value: Any, *, name: str, origin: str) -> bool:
    """Read a yes/no option that may be stored as text (connection extras often are).

    :param value: the option's value.
    :param name: the option's name, for the message.
    :param origin: how the message names where the option came from, e.g. ``Connection 'db'``.
    :raises DatabaseConfigurationError: for anything but a bool or a yes/no text.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_STRINGS | _FALSE_STRINGS:
        return value.strip().lower() in _TRUE_STRINGS
    raise DatabaseConfigurationError(
        f"{origin}: extra {name!r} must be true or false, got {value!r}. "
        f"Fix the connection's extra, for example {{{name!r}: true}}."
    )


async def ssl_setting_from_options(
    family: EngineFamily, options: Mapping[str, Any], origin: str
) -> SslSetting:
    """Return the probe's TLS setting for a connection's options.

    :param family: the engine family of the connection.
    :param options: the connection's options (an Airflow connection's extra).
    :param origin: how messages name the connection, e.g. ``Connection 'db'``.
    :raises DatabaseConfigurationError: an unknown mode, bad JSON, or certificates that cannot be loaded.
    """
    if family == "postgresql":
        return await _postgres_ssl(options, origin)
    return await _mysql_ssl(options, origin)


async def _postgres_ssl(options: Mapping[str, Any], origin: str) -> ssl.SSLContext | str | None:
    mode = options.get("sslmode")
    if mode is None:
        return None
    mode = str(mode).lower()
    if mode not in SSL_MODES:
        raise DatabaseConfigurationError(
            f"{origin}: extra sslmode={mode!r} is not a PostgreSQL sslmode; "
            f"use one of {', '.join(SSL_MODES)}."
        )
    rootcert, cert, key = options.get("sslrootcert"), options.get("sslcert"), options.get("sslkey")
    if mode not in SSL_MODES_REQUIRING_TLS or not (rootcert or cert):
        # asyncpg understands libpq's sslmode names itself.
        return mode

    def build() -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=rootcert)
        if mode != "verify-full":
            context.check_hostname = False
        if mode == "require" and not rootcert:
            context.verify_mode = ssl.CERT_NONE
        if cert:
            context.load_cert_chain(cert, key)
        return context

    return await _build_context(build, origin)


async def _mysql_ssl(options: Mapping[str, Any], origin: str) -> ssl.SSLContext | bool | None:
    setting = options.get("ssl")
    if setting is None:
        return None
    if isinstance(setting, str) and setting.strip().startswith("{"):
        try:
            setting = json.loads(setting)
        except ValueError:
            raise DatabaseConfigurationError(
                f"{origin}: extra 'ssl' is not valid JSON; use true, false or an "
                'object such as {"ca": "/path/to/ca.pem"}.'
            ) from None
    if not isinstance(setting, dict):
        # true: encrypt without verifying (the core's meaning); false: no TLS.
        return option_bool(setting, name="ssl", origin=origin) or None
    tls_options: dict[str, Any] = setting
    check_hostname = option_bool(
        tls_options.get("check_hostname", True), name="ssl.check_hostname", origin=origin
    )

    def build() -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=tls_options.get("ca"))
        context.check_hostname = check_hostname
        if tls_options.get("cert"):
            context.load_cert_chain(tls_options["cert"], tls_options.get("key"))
        return context

    return await _build_context(build, origin)


async def _build_context(build: Callable[[], ssl.SSLContext], origin: str) -> ssl.SSLContext:
    """Build an SSL context in a worker thread (it reads certificate files)."""
    try:
        return await asyncio.to_thread(build)
    except (OSError, ssl.SSLError) as exc:
        raise DatabaseConfigurationError(
            f"{origin}: its TLS settings could not be loaded ({type(exc).__name__}: "
            f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}); check the "
            "certificate paths in the connection's extra."
        ) from None
