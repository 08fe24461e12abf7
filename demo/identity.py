"""The demo's fiscal codes: how the contact center knows a customer, since it never sees CRM ids.

    fiscal_code(42)              # 'QZXHWP71M26K503G' — the CRM's canonical spelling
    care_spelling(42)            # the same code as the contact center keys it ('qzxhwp71m26k503g ')

Derived from the customer id alone (a hash, not the generator's random stream), so the seed, the
workload and the walkthrough agree without a shared table. The shape follows an Italian codice
fiscale (6 letters, 2 digits, a letter, 2 digits, a letter, 3 digits, a check letter). One customer
in seven is spelled by the contact center in lower case with a trailing blank: the spec's key rule
(`trim`, `upper`) is what joins them to the CRM.
"""

from __future__ import annotations

import hashlib
import string
from typing import Final

__all__ = ["care_spelling", "fiscal_code"]

_LETTERS: Final = string.ascii_uppercase
_SHAPE: Final = "LLLLLLDDLDDLDDDL"


def fiscal_code(customer_id: int) -> str:
    digest = hashlib.sha256(f"scv-demo-fiscal-code-{customer_id}".encode()).digest()
    places = zip(_SHAPE, digest, strict=False)
    return "".join(_LETTERS[byte % 26] if kind == "L" else str(byte % 10) for kind, byte in places)


def care_spelling(customer_id: int) -> str:
    code = fiscal_code(customer_id)
    return f"{code.lower()} " if customer_id % 7 == 0 else code
