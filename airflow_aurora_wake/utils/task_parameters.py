"""The Airflow-side checks of operator and sensor parameters, which the core's types cannot make.

The core's request and options types (:class:`~airflow_aurora_wake.core.wait.WaitRequest`,
:class:`~airflow_aurora_wake.core.wake.WakeOptions`) validate every setting of a wait or a wake.
What is left here belongs to Airflow: templates not rendered yet, the text ``"None"`` a template
leaves behind, connection ids, and the Amazon provider's ``aws_conn_id``, ``verify`` and
``botocore_config``. Every error is the core's :class:`InvalidParameterError`, which is not an
``AirflowException``, so ``soft_fail`` never turns it into a skip.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_aurora_wake.core.errors import InvalidParameterError

_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def is_unrendered(value: object) -> bool:
    """True for a value that templating may still change (Jinja string or a non-plain object).

    Construction-time checks skip these; ``execute`` checks the rendered value.

    :param value: A constructor argument of a templated field.
    """
    if isinstance(value, str):
        return any(marker in value for marker in _TEMPLATE_MARKERS)
    return value is not None and not isinstance(value, bool | int | float | dict | list | tuple)


#: What a template that still has to be rendered stands for while the other parameters are
#: checked at parse time: valid values that say nothing about the rendered one.
_TEMPLATE_STAND_INS: dict[str, object] = {
    "db_cluster_identifier": "templated-cluster",
    "region_name": None,
    "conn_id": "templated-connection",
    "data_api_secret_arn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:templated",
    "database": None,
    "capacity": None,
}


def task_values(task: object, names: tuple[str, ...], *, at_parse_time: bool = False) -> dict[str, Any]:
    """The task's values of ``names``; at parse time, a valid stand-in for each unrendered template.

    With the stand-ins a DAG fails to parse on every parameter it can already get wrong,
    whichever others are templated; ``execute`` checks the rendered values again.

    :param task: The operator or sensor.
    :param names: Attribute names (templated fields among them).
    :param at_parse_time: Replace values that templating may still change.
    """
    values = {name: getattr(task, name) for name in names}
    if not at_parse_time:
        return values
    return {
        name: _TEMPLATE_STAND_INS[name] if name in _TEMPLATE_STAND_INS and is_unrendered(value) else value
        for name, value in values.items()
    }


def reject_none_text(values: dict[str, object]) -> None:
    """Reject the text ``"None"``: what a template that rendered ``None`` leaves behind.

    Airflow renders templates as text unless the DAG sets ``render_template_as_native_obj``, so
    ``"{{ ti.xcom_pull(...) }}"`` with no XCom becomes ``"None"``: a cluster identifier that
    looks valid, a connection id that does not exist, a CA bundle path. Catch it by name.

    :param values: Rendered template fields by parameter name.
    """
    for parameter, value in values.items():
        if isinstance(value, str) and value.strip() == "None":
            extra = (
                " (a cluster really named 'None' can be given by its ARN)"
                if parameter == "db_cluster_identifier"
                else ""
            )
            raise InvalidParameterError(
                parameter,
                value,
                "this is the text 'None', which a template renders when the XCom, param or Variable "
                "it reads has no value: give it a value, or pass None without a template (or set "
                f"render_template_as_native_obj=True on the DAG){extra}",
            )


def validate_conn_id(value: object, parameter: str, *, required: bool, fix: str) -> str | None:
    """Validate an Airflow connection id: ``None`` (when optional) or a non-empty string.

    :param value: The connection id.
    :param parameter: The parameter name, for the message.
    :param required: Whether ``None`` is refused.
    :param fix: What a valid value is, for the message.
    """
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidParameterError(parameter, value, fix)
    return value


def validate_aws_params(aws_conn_id: object, verify: object, botocore_config: object) -> None:
    """Validate the Amazon provider's AWS parameters (``region_name`` is the core's to check).

    :param aws_conn_id: ``None`` or the id of an AWS connection.
    :param verify: ``None``, a bool, or the path of a CA bundle.
    :param botocore_config: ``None`` or a dict of botocore ``Config`` arguments.
    """
    validate_conn_id(
        aws_conn_id,
        "aws_conn_id",
        required=False,
        fix="give the id of an AWS connection, or None for the default boto3 credentials",
    )
    if verify is not None and not isinstance(verify, bool) and not (isinstance(verify, str) and verify):
        raise InvalidParameterError("verify", verify, "must be None, True, False or the path of a CA bundle")
    if isinstance(verify, str):
        if verify.strip().lower() in ("true", "false", "none"):
            raise InvalidParameterError(
                "verify",
                verify,
                "this text would be taken as the path of a CA bundle (a template renders True, False "
                "and None as text): pass True, False or None without a template, or set "
                "render_template_as_native_obj=True on the DAG",
            )
        if not os.path.isfile(verify):
            raise InvalidParameterError(
                "verify", verify, "no CA bundle file exists at this path: give a CA bundle's path, or True"
            )
    if botocore_config is not None and not isinstance(botocore_config, dict):
        raise InvalidParameterError(
            "botocore_config", botocore_config, "must be None or a dict of botocore Config arguments"
        )


def coerce_int(value: Any) -> Any:
    """Turn a rendered template such as ``"8"`` into ``8``; leave anything else unchanged.

    :param value: A rendered template value.
    """
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value
