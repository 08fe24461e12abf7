"""The local stack as supervised processes: PostgreSQL, Kafka (KRaft), Kafka Connect with Debezium,
Apicurio Registry, Cassandra and Prometheus, all bound to loopback with bounded memory.

    from compose.native.stack import Stack
    Stack(get_settings()).up()        # installs (cached), starts, waits until every service answers

Modules: ``install`` (Maven and apt artifacts), ``configs`` (rendered config files), ``services``
(what to run and in which order), ``health`` (real requests per service), ``supervisor`` (pid files and
process groups), ``stack`` (up/down/status), ``cli`` (``scv stack``).
"""
