"""Keep passwords and tokens out of messages and logs: :func:`redact` and :func:`safe_error_text`."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact", "safe_error_text"]

_DSN_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
_KEY_VALUE_SECRET = re.compile(
    r"(?i)(?P<key>password|passwd|pwd|token|secret|X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential)"
    r"(?P<sep>\s*[=:]\s*)(?P<value>[^\s&;,'\"]+)"
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove passwords and tokens from ``text``.

    :param text: any text that may embed a DSN, a presigned IAM token or a known secret.
    :param secrets: exact secret strings to blank out wherever they appear.
    :returns: the text with ``***`` in place of every secret found.
    """
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    text = _DSN_PASSWORD.sub(lambda match: f"{match.group('prefix')}:***@", text)
    return _KEY_VALUE_SECRET.sub(lambda match: f"{match.group('key')}{match.group('sep')}***", text)


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
    if len(text) > 300:
        text = text[:300] + "..."
    return redact(text, secrets)
