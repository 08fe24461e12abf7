"""Ground floor: the contracts that travel between components, as plain data with no I/O.

- ``naming``: every name a source's pieces carry, derived from the source's name;
- ``registration``: the mapping `scv sources add` writes and the replicator reads;
- ``cells``: typed attribute values <-> the view's text cells (the read contract's value forms).

Imports nothing of the project.
"""
