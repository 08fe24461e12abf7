"""Every error the read client raises: one hierarchy, never the driver's own exceptions.

ViewClientError
├── NotFound                    the store answered: nothing there
│   ├── CustomerNotFound
│   └── EntityNotFound
├── InvalidPageToken            a page token that this key did not issue for this customer/section
├── StoreUnavailable            no replica could answer at the requested consistency; retry later
│   └── StoreTimeout            ... because they did not answer in time
├── ViewDecodeError             a stored cell this version cannot read (written by a newer scv?)
└── ClientConfigurationError    settings, keyspace, credentials or TLS are wrong: fix, don't retry

try:
    view = client.get_view("42")
except CustomerNotFound: ...
except StoreUnavailable: ...   # 503 for an API, "try again" for a channel
"""

from __future__ import annotations

__all__ = [
    "ClientConfigurationError",
    "CustomerNotFound",
    "EntityNotFound",
    "InvalidPageToken",
    "NotFound",
    "StoreTimeout",
    "StoreUnavailable",
    "ViewClientError",
    "ViewDecodeError",
]


class ViewClientError(Exception):
    """Base of every error of the read client."""


class NotFound(ViewClientError):
    """The store answered, and holds nothing for the request."""


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"no view for customer {customer_id!r}")
        self.customer_id = customer_id


class EntityNotFound(NotFound):
    def __init__(self, customer_id: str, what: str) -> None:
        super().__init__(f"customer {customer_id!r} has no entity {what}")
        self.customer_id = customer_id


class InvalidPageToken(ViewClientError):
    """The page token is malformed, or was issued for another customer or section, or by another key."""


class StoreUnavailable(ViewClientError):
    """No replica could answer at the requested consistency (and no fallback was allowed or possible).
    Transient: retry later."""


class StoreTimeout(StoreUnavailable):
    """The replicas did not answer within the request timeout."""


class ViewDecodeError(ViewClientError):
    """A stored cell cannot be decoded by this version of the client."""


class ClientConfigurationError(ViewClientError):
    """The settings, the keyspace, the credentials or the TLS setup are wrong; retrying will not help."""
