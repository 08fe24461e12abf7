"""The read side: typed reads of the Single Customer View (see composition.py for the composed sections)."""
