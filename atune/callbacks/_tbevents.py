"""TensorBoard ``Event`` records, encoded straight to protobuf wire format.

The TensorBoard logger writes one ``Event`` per result: a wall time, a step and a
``Summary`` of ``simple_value`` scalars; plus a version record per file, a
``SessionLog.START`` when a trial's history is rewound, and the HParams plugin's three
summaries when a trial ends. Those few message shapes are encoded here with the
protobuf wire format (varints, length-delimited fields, little-endian floats), as
tensorboardX's generated classes would serialize them, field for field
(``tests/unit/test_tbevents.py`` parses every record back with tensorboardX's classes
and compares it with the message tensorboardX builds).

Why not tensorboardX's classes: importing any of them runs ``tensorboardX/__init__``,
which imports ``torch`` when it is installed -- about 3 s and 180,000 Python objects
in the driver, which every later full garbage collection then walks (a pause of
hundreds of milliseconds on the event loop each time). Encoding here is also cheaper:
a result of 16 numeric fields takes about 16 us (tags collected and encoded) against
about 49 us with tensorboardX's message classes, and the logger writes tens of
thousands per second.

Field numbers are those of tensorboardX's ``proto/event.proto``, ``summary.proto``,
``plugin_hparams.proto`` and ``api.proto`` (TensorFlow's and TensorBoard's own).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping

__all__ = [
    "ScalarEncoder",
    "hparams_events",
    "session_start_event",
    "version_event",
]

_DOUBLE = struct.Struct("<d").pack
_FLOAT = struct.Struct("<f").pack

# Wire types.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64/int32: two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, data: bytes) -> bytes:
    """A length-delimited field (string, bytes, embedded message)."""
    return _tag(field, _LEN) + _varint(len(data)) + data


def _string(field: int, text: str) -> bytes:
    return _bytes(field, text.encode("utf-8"))


def _double(field: int, value: float) -> bytes:
    return _tag(field, _FIXED64) + _DOUBLE(value)


def _float32(value: float) -> bytes:
    try:
        return _FLOAT(value)
    except OverflowError:  # beyond float32's range: protobuf stores +-inf
        return _FLOAT(math.copysign(math.inf, value))


# Event: wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5,
# session_log = 7.
_WALL_TIME = _tag(1, _FIXED64)
_STEP = _tag(2, _VARINT)
_SUMMARY = _tag(5, _LEN)
# Summary: value = 1 (repeated Value). Value: tag = 1, simple_value = 2 (float),
# metadata = 9.
_SUMMARY_VALUE = _tag(1, _LEN)
_SIMPLE_VALUE = _tag(2, _FIXED32)


def _event_head(wall_time: float, step: int) -> bytes:
    head = _WALL_TIME + _DOUBLE(wall_time) if wall_time else b""
    if step:
        head += _STEP + _varint(step)
    return head


def version_event(wall_time: float) -> bytes:
    """The record every event file starts with: ``file_version="brain.Event:2"``."""
    return _event_head(wall_time, 0) + _string(3, "brain.Event:2")


def session_start_event(wall_time: float, step: int) -> bytes:
    """``SessionLog(status=START)`` at ``step``: TensorBoard then drops the events
    it has past ``step`` (what tensorboardX's ``purge_step`` writes)."""
    return _event_head(wall_time, step) + _bytes(7, _tag(1, _VARINT) + _varint(1))


class ScalarEncoder:
    """Encodes ``Event(wall_time, step, summary=Summary(value=[simple_value...]))``.

    The encoded head of each tag's ``Summary.Value`` (field key, length, tag string,
    the ``simple_value`` key) is computed once per tag and kept, so a result costs a
    ``struct.pack`` per value and a few byte joins. One encoder per writer thread.
    """

    def __init__(self) -> None:
        self._heads: dict[str, bytes] = {}

    def event(self, wall_time: float, step: int, tags: Mapping[str, float]) -> bytes:
        heads = self._heads
        parts = []
        for tag, value in tags.items():
            head = heads.get(tag)
            if head is None:
                body = _string(1, tag) + _SIMPLE_VALUE
                # The Value's length: its tag field, the key and 4 bytes of float.
                head = heads[tag] = _SUMMARY_VALUE + _varint(len(body) + 4) + body
            parts.append(head)
            parts.append(_float32(value))
        summary = b"".join(parts)
        return _event_head(wall_time, step) + _SUMMARY + _varint(len(summary)) + summary


# --------------------------------------------------------------------- HParams
_PLUGIN_NAME = "hparams"
_EXPERIMENT_TAG = "_hparams_/experiment"
_SESSION_START_INFO_TAG = "_hparams_/session_start_info"
_SESSION_END_INFO_TAG = "_hparams_/session_end_info"
# api.proto: DataType and Status enums.
_DATA_TYPE_STRING, _DATA_TYPE_BOOL, _DATA_TYPE_FLOAT64 = 1, 2, 3
_STATUS_SUCCESS = 1


def _plugin_summary(tag: str, content: bytes) -> bytes:
    """``Summary(value=[Value(tag, metadata=SummaryMetadata(plugin_data=...))])``."""
    plugin_data = _string(1, _PLUGIN_NAME) + _bytes(2, content)
    metadata = _bytes(1, plugin_data)
    value = _string(1, tag) + _bytes(9, metadata)
    return _bytes(1, value)


def _value(v: str | bool | float) -> tuple[bytes, int]:
    """A ``google.protobuf.Value`` for an hparam, and its api.proto ``DataType``."""
    if isinstance(v, str):
        return _string(3, v), _DATA_TYPE_STRING  # string_value = 3
    if isinstance(v, bool):
        return _tag(4, _VARINT) + _varint(int(v)), _DATA_TYPE_BOOL  # bool_value = 4
    return _double(2, float(v)), _DATA_TYPE_FLOAT64  # number_value = 2


def hparams_events(
    wall_time: float,
    step: int,
    params: Mapping[str, str | bool | float],
    metrics: Iterable[str],
) -> list[bytes]:
    """The HParams plugin's experiment, session-start and session-end events.

    The same three summaries, in the same order, as ``tensorboardX.summary.hparams(
    hparam_dict=params, metric_dict=metrics)`` (plugin data version 0, status
    SUCCESS), each wrapped in an ``Event`` at ``wall_time`` and ``step``.
    """
    entries, infos = [], []
    for name, v in params.items():
        encoded, data_type = _value(v)
        # map<string, Value> hparams = 1: each entry a message {key = 1, value = 2}.
        entries.append(_bytes(1, _string(1, name) + _bytes(2, encoded)))
        # HParamInfo: name = 1, type = 4.
        infos.append(_bytes(4, _string(1, name) + _tag(4, _VARINT) + _varint(data_type)))
    # MetricInfo: name = 1 (MetricName: tag = 2). Experiment: metric_infos = 5.
    metric_infos = [_bytes(5, _bytes(1, _string(2, tag))) for tag in metrics]
    experiment = b"".join(infos) + b"".join(metric_infos)
    # HParamsPluginData: version = 1 (0, not written), experiment = 2,
    # session_start_info = 3, session_end_info = 4 (SessionEndInfo: status = 1).
    end_info = _tag(1, _VARINT) + _varint(_STATUS_SUCCESS)
    summaries = [
        _plugin_summary(_EXPERIMENT_TAG, _bytes(2, experiment)),
        _plugin_summary(_SESSION_START_INFO_TAG, _bytes(3, b"".join(entries))),
        _plugin_summary(_SESSION_END_INFO_TAG, _bytes(4, end_info)),
    ]
    head = _event_head(wall_time, step)
    return [head + _bytes(5, summary) for summary in summaries]
