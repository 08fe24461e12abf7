"""The Confluent wire format and the writer schemas behind it.

    decoder = AvroDecoder(SchemaRegistryClient({"url": settings.registry.url}))
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from consumer.exceptions import DecodeError, RegistryUnavailable, UnknownSchema
from consumer.logical import Converter, compile_converter

__all__ = ["ApicurioContent", "AvroDecoder", "WriterSchema", "split_wire_format"]

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


class ApicurioContent:
    """Schema text by content id from Apicurio's native API.

    Apicurio 3.0.x answers the ccompat ``GET /schemas/ids/{id}`` by guessing the artifact type from
    the content, and the guess fails (HTTP 400 "Failed to discover artifact type from content") for
    some valid Debezium Avro schemas (Apicurio issue 5713, fixed after 3.0.9). The converter writes
    content ids, so the native ``/ids/contentIds/{id}`` returns exactly the writer schema.
    """

    def __init__(self, native_url: str, timeout_s: float = 10.0) -> None:
        self._client = httpx.Client(base_url=native_url.rstrip("/"), timeout=timeout_s)

    def __call__(self, schema_id: int) -> str:
        try:
            response = self._client.get(f"/ids/contentIds/{schema_id}")
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"schema registry unreachable for id {schema_id}: {exc}") from exc
        if response.status_code == 404:
            raise UnknownSchema(f"schema id {schema_id} is not in the registry")
        if response.status_code != 200:
            raise RegistryUnavailable(f"schema registry answered {response.status_code} for id {schema_id}")
        return response.text


class AvroDecoder:
    def __init__(self, registry: SchemaRegistryClient, fallback: Callable[[int], str] | None = None) -> None:
        self._registry = registry
        self._fallback = fallback
        self._schemas: dict[int, WriterSchema] = {}

    def _schema_text(self, schema_id: int) -> str:
        try:
            registered = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise UnknownSchema(f"schema id {schema_id} is not in the registry") from exc
            if exc.http_status_code == 400 and self._fallback is not None:
                return self._fallback(schema_id)
            raise RegistryUnavailable(f"schema registry failed for id {schema_id}: {exc}") from exc
        except Exception as exc:  # connection refused, timeouts: the HTTP client's own errors
            raise RegistryUnavailable(f"schema registry unreachable for id {schema_id}: {exc}") from exc
        if not registered.schema_str:
            raise UnknownSchema(f"schema id {schema_id} has no schema text in the registry")
        return registered.schema_str

    def schema(self, schema_id: int) -> WriterSchema:
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        raw = json.loads(self._schema_text(schema_id))
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
