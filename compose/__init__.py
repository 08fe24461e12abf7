"""The stack the service runs against, in two shapes that share one set of pinned versions.

- ``compose/versions.yaml``: every version, once (``compose.versions`` loads it).
- ``compose/native``: the stack as local processes (``scv stack up``), for development and CI; its
  ``configs`` module renders every service's configuration.
- ``compose/docker-compose.yml``: the production-shaped equivalent with the official images. It mounts
  ``config/generated/``, which ``compose.generated`` (``scv compose render``) renders with the native
  renderers and the containers' view of addresses and paths (``compose.container_view``).
"""
