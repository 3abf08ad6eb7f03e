"""TFRecord files and ``tf.train.Example`` records, read without TensorFlow.

A TFRecord file is a run of records, each framed as::

    uint64 length (little-endian) | uint32 masked crc32c(length bytes) | data | uint32 masked crc32c(data)

with ``masked(crc) = ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2**32``. Both checksums are
verified (crc32c from the ``google-crc32c`` package). An ``Example`` is a protobuf message
``{features: {feature: map<string, Feature>}}`` where a Feature holds one of a bytes, float or
int64 list; :func:`parse_example` reads the wire format directly and keeps the bytes lists,
which is all an image dataset such as BAIR needs.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """The masked crc32c that TFRecord framing stores (uint32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass
class Record:
    """Record ``index`` of a file: its bytes, or None and why it could not be read."""

    index: int
    data: bytes | None
    error: str | None = None


def read_records(path: str | os.PathLike) -> Iterator[Record]:
    """Every record of a TFRecord file, in order.

    A record whose data checksum fails is yielded with an error and reading goes on (its
    length was sound); a bad length checksum or a file cut short ends the file with an error
    record, since nothing after it can be framed.
    """
    with open(path, "rb") as handle:
        index = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            if len(header) < 12:
                yield Record(
                    index, None, f"truncated: {len(header)} of 12 header bytes at the end of the file"
                )
                return
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc(header[:8]) != length_crc:
                yield Record(index, None, "length checksum mismatch (corrupt from here on)")
                return
            body = handle.read(length + 4)
            if len(body) < length + 4:
                yield Record(
                    index, None, f"truncated: {len(body)} of {length + 4} bytes of data and checksum"
                )
                return
            data = body[:length]
            (data_crc,) = struct.unpack("<I", body[length:])
            if masked_crc(data) != data_crc:
                yield Record(index, None, "data checksum mismatch")
            else:
                yield Record(index, data)
            index += 1


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at ``pos``."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("malformed protobuf: varint runs past the message")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a message: ints for varint fields, bytes for the others."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
            continue
        if wire == 2:
            size, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ValueError(f"malformed protobuf: wire type {wire} of field {number} is not supported")
        if pos + size > len(buf):
            raise ValueError(f"malformed protobuf: field {number} runs past the message")
        yield number, buf[pos : pos + size]
        pos += size


def _message(value: int | bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError(f"malformed protobuf: {what} is not a length-delimited message")
    return value


def parse_example(data: bytes) -> dict[str, list[bytes]]:
    """The bytes features of a serialized ``tf.train.Example``: {name: [value, ...]}.

    Float and int64 features are skipped. Raises ValueError on malformed input.
    """
    features: dict[str, list[bytes]] = {}
    for number, value in _fields(data):
        if number != 1:  # Example.features
            continue
        for entry_number, entry in _fields(_message(value, "Example.features")):
            if entry_number != 1:  # Features.feature (map entries)
                continue
            key, feature = None, b""
            for part_number, part in _fields(_message(entry, "a feature map entry")):
                if part_number == 1:
                    key = _message(part, "a feature name").decode("utf-8", errors="replace")
                elif part_number == 2:
                    feature = _message(part, "a Feature")
            if key is None:
                raise ValueError("malformed protobuf: a feature map entry has no name")
            for kind, payload in _fields(feature):
                if kind == 1:  # Feature.bytes_list
                    values = [
                        _message(v, "a bytes value")
                        for n, v in _fields(_message(payload, "BytesList"))
                        if n == 1
                    ]
                    features[key] = values
    return features
