"""The read client of the Single Customer View: typed views of customers, straight from the store.

    from scv.client import ClientSettings, CustomerViewClient

    with CustomerViewClient(ClientSettings(contact_points=("10.0.0.5",), keyspace="scv")) as client:
        view = client.get_view("42")
        for email in view.sections.get("email", ()):
            print(email.attributes["email"], email.source_ts)

``AsyncCustomerViewClient`` is its asyncio twin (same methods, awaited). Both share one pure core
(scv/client/core.py: rows -> typed views, page tokens, error mapping) and differ only in how they
wait for the driver. The package depends on the CQL driver and on ``scv.contracts.cells`` only:
installed on its own (clients/python, distribution ``scv-client``) it brings nothing else.
"""

from scv.client.aio import AsyncCustomerViewClient
from scv.client.exceptions import (
    ClientConfigurationError,
    CustomerNotFound,
    EntityNotFound,
    InvalidPageToken,
    NotFound,
    StoreTimeout,
    StoreUnavailable,
    ViewClientError,
    ViewDecodeError,
)
from scv.client.models import CustomerView, EntityView, SectionPage, Value
from scv.client.settings import ClientSettings, TlsSettings
from scv.client.sync import CustomerViewClient

__all__ = [
    "AsyncCustomerViewClient",
    "ClientConfigurationError",
    "ClientSettings",
    "CustomerNotFound",
    "CustomerView",
    "CustomerViewClient",
    "EntityNotFound",
    "EntityView",
    "InvalidPageToken",
    "NotFound",
    "SectionPage",
    "StoreTimeout",
    "StoreUnavailable",
    "TlsSettings",
    "Value",
    "ViewClientError",
    "ViewDecodeError",
]
