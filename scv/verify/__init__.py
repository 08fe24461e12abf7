"""`scv verify`: reconcile the systems of record with the view, and repair what drifted.

Modules: ``canonical`` (one text per value, in SQL and in Python), ``scope`` (what is compared per
table), ``sides`` (the source and view sides, reduced to bucket sums), ``reconcile`` (the comparison,
with re-checks after the replicator catches up), ``repair`` (incremental snapshots and deletions),
``cli``.
"""
