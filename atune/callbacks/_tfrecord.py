"""TFRecord framing of TensorBoard events.

An event file is a sequence of TFRecords: the payload's length, the length's masked
CRC-32C, the payload, the payload's masked CRC-32C. CPython has no CRC-32C of its
own; the ``crc32c`` package computes it in C with the CPU's CRC32 instruction where
there is one (~0.35 us for a 200-byte record, against ~37 us for the pure-Python loop
tensorboardX falls back to without it).
"""

from __future__ import annotations

import struct

from crc32c import crc32c

__all__ = ["frame_records", "masked_crc32c"]

_U32 = struct.Struct("<I").pack
_U64 = struct.Struct("<Q").pack


def masked_crc32c(data: bytes) -> int:
    """The TFRecord (masked) CRC-32C of ``data``."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_records(payloads: list[bytes]) -> list[bytes]:
    """Frames each payload as a TFRecord: length, its CRC, the payload, its CRC."""
    out = []
    for payload in payloads:
        header = _U64(len(payload))
        out.append(
            b"".join((header, _U32(masked_crc32c(header)), payload, _U32(masked_crc32c(payload))))
        )
    return out
