"""The TensorBoard records atune encodes itself, against tensorboardX's classes.

Every record is parsed back with tensorboardX's generated protobuf classes and
compared with the message tensorboardX itself builds for the same input.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.summary import hparams

from atune.callbacks._tbevents import (
    ScalarEncoder,
    hparams_events,
    session_start_event,
    version_event,
)

tags = st.dictionaries(
    st.text(min_size=1, max_size=40),
    st.floats(allow_nan=False, width=64) | st.integers(-(2**31), 2**31).map(float),
    max_size=12,
)


def tbx_scalar_event(wall_time: float, step: int, values: dict[str, float]) -> Event:
    return Event(
        wall_time=wall_time,
        step=step,
        summary=Summary(value=[Summary.Value(tag=t, simple_value=v) for t, v in values.items()]),
    )


@given(
    wall_time=st.floats(0, 4e9),
    step=st.integers(-(2**63), 2**63 - 1),
    values=tags,
)
def test_scalar_events_parse_as_tensorboardx_builds_them(
    wall_time: float, step: int, values: dict[str, float]
) -> None:
    encoder = ScalarEncoder()
    for _ in range(2):  # the second time from the encoder's cache of tag heads
        data = encoder.event(wall_time, step, values)
        parsed = Event.FromString(data)
        assert parsed == tbx_scalar_event(wall_time, step, values)
        assert data == tbx_scalar_event(wall_time, step, values).SerializeToString()


def test_scalars_beyond_float32_are_infinite_as_in_protobuf() -> None:
    parsed = Event.FromString(ScalarEncoder().event(1.0, 1, {"big": 1e300, "small": -1e300}))
    assert [v.simple_value for v in parsed.summary.value] == [math.inf, -math.inf]
    nan = Event.FromString(ScalarEncoder().event(1.0, 1, {"nan": math.nan}))
    assert math.isnan(nan.summary.value[0].simple_value)


def test_version_and_session_start_records() -> None:
    assert Event.FromString(version_event(12.5)) == Event(
        wall_time=12.5, file_version="brain.Event:2"
    )
    assert Event.FromString(session_start_event(3.0, 7)) == Event(
        wall_time=3.0, step=7, session_log=SessionLog(status=SessionLog.START)
    )


@pytest.mark.parametrize(
    "params",
    [
        {"lr": 0.01, "layers": 3, "act": "relu", "bn": True, "off": False, "zero": 0},
        {"only": "text"},
        {},
    ],
)
def test_hparams_events_match_tensorboardx(params: dict[str, object]) -> None:
    metrics = {"ray/tune/loss": 0.5, "ray/tune/acc": 0.9}
    ours = [Event.FromString(e) for e in hparams_events(5.0, 42, params, metrics)]  # type: ignore[arg-type]
    theirs = [Event(wall_time=5.0, step=42, summary=s) for s in hparams(params, metrics)]
    assert len(ours) == len(theirs) == 3
    # The plugin's content is itself a serialized message (with a map, whose order on
    # the wire is free): compare it parsed, then the rest of the event.
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    for a, b in zip(ours, theirs):
        (va,), (vb,) = a.summary.value, b.summary.value
        content_a = HParamsPluginData.FromString(va.metadata.plugin_data.content)
        content_b = HParamsPluginData.FromString(vb.metadata.plugin_data.content)
        assert content_a == content_b
        va.metadata.plugin_data.content = vb.metadata.plugin_data.content = b""
        assert a == b


def test_double_fields_are_little_endian_ieee() -> None:
    data = version_event(1.5)
    assert data[0] == 0x09 and struct.unpack("<d", data[1:9]) == (1.5,)
