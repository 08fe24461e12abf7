"""The mappings of the sources already onboarded, as the store keeps them (source_registrations).

    registered = registered_mappings(settings.store)     # {'crm': SourceMapping(...), ...}

A source whose tables reach into another source (a cross-source ``via``) is rendered against these:
the key it matches and that key's normalisation rule come from the other source's registration.
"""

from __future__ import annotations

from connectors.exceptions import SourceError
from scv.config.settings import StoreSettings
from scv.contracts.registration import RegistrationError, SourceMapping

__all__ = ["registered_mappings"]


def registered_mappings(store: StoreSettings) -> dict[str, SourceMapping]:
    from cassandra import InvalidRequest

    from store.exceptions import StoreError
    from store.registrations import RegistrationStore
    from store.session import open_session

    try:
        with open_session(store) as session:
            registrations = RegistrationStore(session, store.keyspace).all()
    except InvalidRequest as exc:
        raise SourceError(
            f"the store has no {store.keyspace}.source_registrations table ({exc}); run `scv store migrate`"
        ) from exc
    except StoreError as exc:
        raise SourceError(f"cannot read the source registrations: {exc}") from exc
    mappings: dict[str, SourceMapping] = {}
    for registration in registrations:
        try:
            mappings[registration.name] = SourceMapping.from_json(registration.mapping_json)
        except RegistrationError:
            continue  # written by hand; the replicator logs it, onboarding another source can go on
    return mappings
