"""`python -m scv.client CUSTOMER_ID [--section KIND] [--json]`: the same as `scv view get`."""

import sys

from scv.client.cli import main

sys.exit(main(prog="python -m scv.client"))
