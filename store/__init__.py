"""The CQL store: schema and migrations, the view's writes, and the read client.

It knows nothing of Kafka or Debezium: writes arrive as plain mutations, reads leave as typed views.
"""
