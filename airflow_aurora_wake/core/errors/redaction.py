"""Keep passwords and tokens out of messages and logs: :func:`redact`, :func:`redact_dsn` and
:func:`safe_error_text`.

A URL's user-info ends at its LAST ``@``: a password may hold ``@``, ``:``, ``/`` or spaces
that its author did not percent-encode, and stopping at the first ``@`` (as a URL parser that
has failed may) would show the rest of it. Both functions here apply that rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact", "redact_dsn", "safe_error_text"]

# Greedy up to the last "@" of the line: hiding a host after a password is the price of never
# showing a password that holds "@" or spaces. The user (before the first ":") stays, so a
# login error still says who tried.
_DSN_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^\n]*@")
_KEY_VALUE_SECRET = re.compile(
    r"(?i)(?P<key>password|passwd|pwd|token|secret|X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential)"
    r"(?P<sep>\s*[=:]\s*)(?P<value>[^\s&;,'\"]+)"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove passwords and tokens from ``text``.

    :param text: any text that may embed a DSN, a presigned IAM token or a known secret.
    :param secrets: exact secret strings to blank out wherever they appear.
    :returns: the text with ``***`` in place of every secret found; a DSN keeps its user
        (``postgresql://app:***@db/x``).
    """
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    text = _DSN_PASSWORD.sub(lambda match: f"{match.group('prefix')}:***@", text)
    return _KEY_VALUE_SECRET.sub(lambda match: f"{match.group('key')}{match.group('sep')}***", text)


def redact_dsn(value: str) -> str:
    """Show a value given as a DSN with its whole user-info replaced, whatever the rest looks like.

    Everything between ``://`` (or the start, without a scheme) and the last ``@`` becomes
    ``***``: ``postgresql://etl:Pa@ss word@host:5432x/db`` is shown as
    ``postgresql://***@host:5432x/db``. For a value that may not parse at all, where the end
    of the user or the start of the password cannot be trusted.

    :param value: the DSN as given.
    """
    end = value.rfind("@")
    if end < 0:
        return value
    scheme_end = value.find("://")
    start = scheme_end + 3 if scheme_end >= 0 and scheme_end + 3 <= end else 0
    return f"{value[:start]}***{value[end:]}"


def safe_error_text(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """Describe an exception in one line without secrets.

    :param exc: the exception.
    :param secrets: exact secret strings to blank out.
    """
    text = str(exc).strip().replace("\n", " ")
    name = type(exc).__name__
    if not text:
        text = name
    elif name not in text:
        text = f"{name}: {text}"
    # Redact before cutting: a cut through a DSN or a secret would leave a part no rule matches.
    text = redact(text, secrets)
    if len(text) > 300:
        text = text[:300] + "..."
    return text
