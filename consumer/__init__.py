"""The replicator: Debezium Avro change topics -> customer-keyed wide rows in the store."""
