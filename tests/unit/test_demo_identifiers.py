"""Check digits of the invented IBANs and ISINs match the published algorithms."""

from __future__ import annotations

import pytest

from demo.identifiers import iban_it, isin


@pytest.mark.parametrize(
    ("country", "nsin", "expected"),
    [
        ("US", "037833100", "US0378331005"),
        ("IE", "00B4L5Y98", "IE00B4L5Y983"),
        ("IT", "000307247", "IT0003072474"),
    ],
)
def test_isin_check_digit_matches_published_isins(country: str, nsin: str, expected: str) -> None:
    assert isin(country, nsin) == expected


def test_iban_matches_the_published_italian_example() -> None:
    assert iban_it("X0542811101", "000000123456") == "IT60X0542811101000000123456"


def test_iban_rejects_a_short_bban_naming_the_parts() -> None:
    with pytest.raises(ValueError, match="CIN\\+ABI\\+CAB"):
        iban_it("X05428", "1")
