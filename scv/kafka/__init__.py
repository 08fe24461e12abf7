"""Edge: the Kafka cluster as the service's tools see it from outside a consumer group.

``admin``: topics (list, create, delete), watermarks and end offsets, a group's committed offsets and
lag, the time of a topic's newest record. Every component that asks such questions asks here.
"""
