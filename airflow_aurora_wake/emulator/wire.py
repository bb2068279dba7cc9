"""WSGI plumbing and the shapes of AWS responses (query-protocol XML errors, REST-JSON errors)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

StartResponse = Callable[..., Any]
#: HTTP status, headers and body.
Response = tuple[int, dict[str, str], bytes]
RDS_XMLNS = "http://rds.amazonaws.com/doc/2014-10-31/"


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


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put a fresh stream back, for moto to read it again.

    A request without ``Content-Length`` (and not chunked) has no body (RFC 9112, 6.3).

    :param environ: the WSGI environment.
    """
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if environ.get("wsgi.input_terminated"):
        # werkzeug's de-chunked stream of a chunked request ends at the last chunk.
        body = stream.read()
    elif length.isdigit():
        body = stream.read(int(length))
    else:
        # wsgi.input is the raw socket: reading it to the end would wait until the client
        # closes the connection, which a keep-alive client only does when it gives up.
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)


def send(start_response: StartResponse, response: Response) -> list[bytes]:
    """Start a WSGI response and return its body.

    :param start_response: the WSGI callable.
    :param response: status, headers and body.
    """
    status, headers, body = response
    headers = {**headers, "Content-Length": str(len(body))}
    start_response(f"{status} {HTTPStatus(status).phrase}", list(headers.items()))
    return [body]
