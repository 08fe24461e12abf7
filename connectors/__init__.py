"""Sources in: declarative source specs, rendered and validated into Debezium connectors."""
