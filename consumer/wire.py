"""The Confluent wire format and the writer schemas behind it.

    decoder = AvroDecoder(SchemaRegistryClient({"url": settings.kafka.schema_registry_url}))
    schema_id, record = decoder.decode(message_value)

Wire format: byte 0 is the magic byte 0, bytes 1-4 the big-endian schema id, the rest the Avro
binary body. Schemas are fetched once per id and cached for the life of the process (ids are
immutable). A 404 for an id is poison (the record can never be decoded here); any other registry
failure is transient and retried.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumer.exceptions import DecodeError, RegistryUnavailable, UnknownSchema
from consumer.logical import Converter, compile_converter

__all__ = ["AvroDecoder", "WriterSchema", "split_wire_format"]

_MAGIC = 0
_HEADER = struct.Struct(">bI")


def split_wire_format(data: bytes) -> tuple[int, memoryview]:
    if len(data) < _HEADER.size:
        raise DecodeError(f"{len(data)} bytes is shorter than the 5-byte Confluent wire-format header")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise DecodeError(
            f"magic byte is {magic}, expected 0: the producer did not write the Confluent wire format "
            f"(check the connector's converter settings)"
        )
    return schema_id, memoryview(data)[_HEADER.size :]


@dataclass(frozen=True)
class WriterSchema:
    schema_id: int
    raw: dict[str, Any]
    parsed: Any
    convert: Converter


class AvroDecoder:
    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._schemas: dict[int, WriterSchema] = {}

    def schema(self, schema_id: int) -> WriterSchema:
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            registered = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchema(f"schema id {schema_id} is not in the registry") from exc
            raise RegistryUnavailable(f"schema registry failed for id {schema_id}: {exc}") from exc
        except Exception as exc:  # connection refused, timeouts: the HTTP client's own errors
            raise RegistryUnavailable(f"schema registry unreachable for id {schema_id}: {exc}") from exc
        if not registered.schema_str:
            raise UnknownSchema(f"schema id {schema_id} has no schema text in the registry")
        raw = json.loads(registered.schema_str)
        try:
            parsed = fastavro.parse_schema(raw)
        except Exception as exc:
            raise DecodeError(f"schema id {schema_id} is not a valid Avro schema: {exc}") from exc
        writer = WriterSchema(schema_id, raw, parsed, compile_converter(raw))
        self._schemas[schema_id] = writer
        return writer

    def decode(self, data: bytes) -> tuple[WriterSchema, Any]:
        schema_id, body = split_wire_format(data)
        writer = self.schema(schema_id)
        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), writer.parsed, None)
        except Exception as exc:
            raise DecodeError(f"Avro body does not match writer schema {schema_id}: {exc}") from exc
        return writer, writer.convert(record)
