"""Ground floor: the service's settings (``settings``: one section per component) and its logging
(``logs``). Imports nothing of the project, so every floor above may import it.

    from scv.config.settings import get_settings
    get_settings().store.keyspace       # 'scv'
"""
