"""Check digits of the banking identifiers the demo invents, so they pass real validators.

iban_it("X0306909606", "100000123456")  # 'IT..X0306909606100000123456' with valid check digits
isin("IT", "000512345")                  # 'IT000512345' + its Luhn check digit
"""

from __future__ import annotations

__all__ = ["iban_check_digits", "iban_it", "isin", "isin_check_digit"]


# ISO 13616 and ISO 6166 both read letters as two-digit numbers: A=10 ... Z=35.
_LETTERS_AS_NUMBERS = str.maketrans({chr(ord("A") + n): str(10 + n) for n in range(26)})


def _alnum_to_digits(text: str) -> str:
    return text.upper().translate(_LETTERS_AS_NUMBERS)


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 mod-97 check digits for ``bban`` in ``country``."""
    remainder = int(_alnum_to_digits(bban + country + "00")) % 97
    return f"{98 - remainder:02d}"


def iban_it(cin_abi_cab: str, account: str) -> str:
    """An Italian IBAN: CIN letter + ABI + CAB (11 chars) and a 12-char account number."""
    if len(cin_abi_cab) != 11 or len(account) != 12:
        raise ValueError(
            f"an Italian BBAN is CIN+ABI+CAB (11 chars) + account (12 chars), got "
            f"{cin_abi_cab!r} + {account!r}"
        )
    bban = cin_abi_cab + account
    return "IT" + iban_check_digits("IT", bban) + bban


def isin_check_digit(body: str) -> str:
    """ISO 6166 check digit (Luhn over the letters-as-numbers expansion) of an 11-char ISIN body."""
    digits = _alnum_to_digits(body)
    total = 0
    # Luhn doubles every second digit starting from the rightmost one of the payload.
    for position, ch in enumerate(reversed(digits)):
        value = int(ch) * (2 if position % 2 == 0 else 1)
        total += value // 10 + value % 10
    return str((10 - total % 10) % 10)


def isin(country: str, nsin: str) -> str:
    if len(country) != 2 or len(nsin) != 9:
        raise ValueError(f"an ISIN is a 2-letter country and a 9-char NSIN, got {country!r} + {nsin!r}")
    body = country + nsin
    return body + isin_check_digit(body)
