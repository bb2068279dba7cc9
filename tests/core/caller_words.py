"""Words that belong to the Airflow adapters and never to what the core tells every caller.

The core's messages reach the ``wait`` command and the plain-Python API too, so they use words
that are true everywhere ("the AWS credentials", "the readiness probe", "the timeout").
"""

from __future__ import annotations

#: Lower-case words only the Airflow adapters may use in a message.
AIRFLOW_WORDS = (
    "airflow",
    "sensor",
    "operator",
    "trigger",
    "xcom",
    "aws connection",
    "conn_id",
    "the task",
)

#: The command's own name, which prefixes every progress line.
PROGRAM = "airflow-aurora-wake"


def airflow_words_in(text: str) -> list[str]:
    """Return the Airflow words in ``text``, the command's own name aside.

    :param text: what a caller is shown.
    """
    lowered = text.lower().replace(PROGRAM, "")
    return [word for word in AIRFLOW_WORDS if word in lowered]
