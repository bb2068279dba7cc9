"""Fuzzing the trigger's round trip through Airflow's storage: lossless for any valid kwargs.

Any kwargs the sensor could defer with (identifiers, optional names, probes, any positive
timings, an absolute deadline, a CA bundle path or bool for ``verify``, a JSON-shaped
``botocore_config``) survive ``serialize()``, Airflow 3's serde wire format, the encrypted
``Trigger`` row and Airflow 2.11's ``BaseSerialization``, and re-create a trigger that
serializes to exactly the same thing (see ``airflow_support.roundtrip_trigger``).
"""

from __future__ import annotations

import math
import string
from typing import Any

import pytest
from airflow_support import roundtrip_trigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

pytestmark = [pytest.mark.faults]

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

IDENTIFIER = st.from_regex(r"\A[A-Za-z](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,20}\Z")
NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20
).filter(lambda text: text == text.strip())
REGION = st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"])
SECRET_ARN = st.builds(
    lambda region, name: f"arn:aws:secretsmanager:{region}:123456789012:secret:{name}",
    REGION,
    st.text(alphabet=string.ascii_letters + string.digits + "-_/+=.@", min_size=1, max_size=20),
)
SECONDS = st.floats(min_value=0.001, max_value=86_400, allow_nan=False, allow_infinity=False)
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
BOTOCORE_CONFIG = st.dictionaries(st.text(min_size=1, max_size=10), JSON, max_size=4)
TIMINGS = ("deadline", "connect_timeout", "describe_interval", "stopped_grace")


@st.composite
def trigger_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    probe = draw(st.sampled_from(["connection", "data-api"]))
    return {
        "db_cluster_identifier": draw(IDENTIFIER),
        "deadline": draw(st.floats(min_value=1e9, max_value=4e9, allow_nan=False)),
        "aws_conn_id": draw(st.none() | NAME),
        "region_name": draw(st.none() | REGION),
        "verify": draw(st.none() | st.booleans() | NAME),
        "botocore_config": draw(
            st.none() | st.dictionaries(st.text(min_size=1, max_size=10), JSON, max_size=4)
        ),
        "conn_id": draw(NAME) if probe == "connection" else draw(st.none() | NAME),
        "probe": probe,
        "connect_timeout": draw(SECONDS),
        "data_api_secret_arn": draw(SECRET_ARN) if probe == "data-api" else draw(st.none() | SECRET_ARN),
        "database": draw(st.none() | NAME),
        "describe_interval": draw(SECONDS),
        "stopped_grace": draw(st.just(0.0) | SECONDS),
    }


def same(left: Any, right: Any) -> bool:
    """Equality that also checks float bits (so -0.0 and 0.0 differ) and types."""
    if isinstance(left, float) or isinstance(right, float):
        return (
            type(left) is type(right)
            and (math.copysign(1, left) == math.copysign(1, right))
            and left == right
        )
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(same(left[k], right[k]) for k in left)
        )
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(map(same, left, right))
    return type(left) is type(right) and left == right


@FUZZ
@given(trigger_kwargs())
def test_round_trip_through_airflow_storage_is_lossless(kwargs: dict[str, Any]) -> None:
    trigger = AuroraServerlessReadyTrigger(**kwargs)
    classpath, serialized = trigger.serialize()
    # Every kwarg is kept, as the value given (timings as floats).
    expected = {
        **kwargs,
        **{
            key: float(kwargs[key])
            for key in ("deadline", "connect_timeout", "describe_interval", "stopped_grace")
        },
    }
    assert same(serialized, expected), (serialized, expected)
    recreated = roundtrip_trigger(trigger)
    assert type(recreated) is AuroraServerlessReadyTrigger
    assert recreated.serialize()[0] == classpath
    assert same(recreated.serialize()[1], serialized), (recreated.serialize()[1], serialized)
    assert recreated.share_key == trigger.share_key
