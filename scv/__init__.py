"""Single Customer View: CDC from systems of record into customer-keyed wide rows."""
