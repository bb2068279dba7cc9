"""A StatsD server for tests: a UDP socket on 127.0.0.1 and a parser of what Airflow sends to it.

Airflow's StatsD logger with ``[metrics] statsd_influxdb_enabled`` sends a tagged metric as
``<prefix>.<name>,<tag>=<value>,...:<value>|<type>``; without tags, ``<prefix>.<name>:<value>|<type>``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

_END = b"statsd-listener-end:1|c"


@dataclass(frozen=True)
class Metric:
    """One metric as received.

    :param name: The full name, prefix included, without the tags.
    :param value: The value sent.
    :param type: ``c`` (counter), ``ms`` (timer) or ``g`` (gauge).
    :param tags: The tags sent in the name (InfluxDB format).
    :param line: The line as received.
    """

    name: str
    value: float
    type: str
    tags: dict[str, str] = field(default_factory=dict)
    line: str = ""


def parse_line(line: str) -> Metric:
    """Parse one StatsD line, InfluxDB tags included.

    :param line: For example ``airflow.aurora_wake.wakes,kind=provisioned:1|c``.
    """
    head, _, rest = line.rpartition(":")
    value, _, kind = rest.partition("|")
    name, *pairs = head.split(",")
    tags = dict(pair.split("=", 1) for pair in pairs)
    return Metric(name=name, value=float(value), type=kind.split("|")[0], tags=tags, line=line)


class StatsdListener:
    """A UDP socket that keeps what it receives until :meth:`drain` (use as a context manager)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]

    def __enter__(self) -> StatsdListener:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.socket.close()

    def drain(self, seconds: float = 10.0) -> list[Metric]:
        """Every metric received so far, once the senders are done.

        An end marker sent now arrives after every datagram already queued on the socket
        (loopback UDP keeps the order of one socket's queue), so reading up to it reads them all.

        :param seconds: Bound on each read (the marker is already on its way).
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(_END, ("127.0.0.1", self.port))
        self.socket.settimeout(seconds)
        metrics: list[Metric] = []
        while True:
            datagram = self.socket.recv(65535)
            if datagram == _END:
                return metrics
            metrics.extend(parse_line(line) for line in datagram.decode().splitlines() if line)
