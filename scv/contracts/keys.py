"""How keys are compared: the normalisation rules a spec declares, applied identically everywhere.

    normalize(" rssmra80a01h501u ", ("trim", "upper"))   # 'RSSMRA80A01H501U'
    normalize(Decimal("42.00"), ("number",))             # '42'

A customer id or a lookup key (a fiscal code, an e-mail) reaches the view from several systems that
spell it differently: '42' and '42.00', upper- and lower-case UUIDs, a fiscal code with a trailing
blank. A spec names the steps, applied in order to the value's text; both sides of a cross-source
lookup use the rule declared with the key, so they always agree.

Steps: ``trim`` (strip surrounding whitespace), ``casefold`` (caseless comparison, e.g. e-mails and
UUIDs), ``upper`` (fiscal codes and other upper-case identifiers), ``digits`` (keep 0-9 only: phone
numbers, account numbers with separators), ``number`` (a canonical decimal: '42.00', '042', 42 and
4.2E1 all become '42'; '-0' becomes '0').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, get_args

__all__ = ["NORMALIZE_STEPS", "InvalidKey", "NormalizeStep", "normalize"]

NormalizeStep = Literal["trim", "casefold", "upper", "digits", "number"]
NORMALIZE_STEPS: Final[tuple[str, ...]] = get_args(NormalizeStep)


class InvalidKey(ValueError):
    """A value cannot be normalised into a key by the declared rule (e.g. 'abc' as a number)."""


def _number(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidKey(f"{text!r} is not a number; the key's rule says `number`") from exc
    if not value.is_finite():
        raise InvalidKey(f"{text!r} is not a finite number; it cannot identify a customer")
    # normalize() drops trailing zeros; quantize keeps integers out of exponent form (4.2E+1 -> 42).
    canonical = value.normalize()
    if canonical == canonical.to_integral_value():
        canonical = canonical.quantize(Decimal(1))
    text = format(canonical, "f")
    return "0" if text in ("-0", "0") else text


_STEPS: Final[dict[str, Callable[[str], str]]] = {
    "trim": str.strip,
    "casefold": str.casefold,
    "upper": str.upper,
    "digits": lambda text: "".join(c for c in text if "0" <= c <= "9"),
    "number": _number,
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def normalize(value: Any, steps: Sequence[str] = ()) -> str:
    """The key's comparable text; ``InvalidKey`` when the value cannot be a key (empty after the rule)."""
    text = _text(value)
    for step in steps:
        text = _STEPS[step](text)
    if text == "":
        raise InvalidKey(f"{value!r} is empty once normalised by {list(steps) or 'no rule'}: not a key")
    return text
