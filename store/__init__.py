"""The CQL store: schema and migrations, and the view's writes (reads are the read client's, scv/client).

It knows nothing of Kafka or Debezium: writes arrive as plain mutations.
"""
