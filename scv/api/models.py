"""The read API's documents, as the OpenAPI document describes them. The routes answer with bytes
rendered straight from the client's views (the read contract, scv/client/models.py): these models
document that shape, they are not used to build responses (validating a 1,000-entity view through
pydantic would cost more than reading it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["BulkRequest", "BulkResponse", "Entity", "ErrorResponse", "Health", "Page", "View"]


class Entity(BaseModel):
    id: str
    source: str = Field(description="Source (system of record) name.")
    table: str = Field(description="schema.table in the source.")
    attributes: dict[str, Any] = Field(
        description="One entry per source column: NUMERIC as a string of its exact digits, timestamptz "
        "as ISO-8601 with offset, date as YYYY-MM-DD, uuid as a string, jsonb embedded, arrays as "
        "lists, enums as strings, NULL as null."
    )
    source_ts: str = Field(
        description="Commit time at the source of the change that last wrote it (ISO-8601)."
    )
    applied_ts: str = Field(description="When the replicator wrote it (ISO-8601).")


class View(BaseModel):
    customer_id: str
    sections: dict[str, list[Entity]] = Field(description="Entities by kind (section).")


class Page(BaseModel):
    customer_id: str
    section: str
    entities: list[Entity]
    next_page_token: str | None = Field(
        description="Opaque; pass it back as page_token for the next page. Null on the last page."
    )


class BulkRequest(BaseModel):
    ids: list[str] = Field(
        min_length=1,
        description="Customer ids (at most api.bulk_max_ids); unknown ones are listed as missing.",
    )


class BulkResponse(BaseModel):
    customers: dict[str, View] = Field(description="The views found, by customer id.")
    missing: list[str] = Field(description="Ids with no view (or none of the sections the token may read).")
    possibly_stale: list[str] = Field(description="Ids answered by fewer replicas than asked for.")


class ErrorResponse(BaseModel):
    status: int
    error: str = Field(description="A stable code: bad_request, unauthorized, forbidden, not_found, ...")
    detail: str = Field(description="What went wrong and what to do.")


class Health(BaseModel):
    status: str
