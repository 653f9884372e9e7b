"""business-rules' numeric arithmetic, which the compiled and the vectorised evaluators both reproduce.

Every numeric operator is a test of the exact difference between value and threshold against
business-rules' epsilon; ``BOUNDS`` states that test per operator, ``exact_numeric`` runs it exactly.
"""

from __future__ import annotations

from decimal import Decimal

from business_rules.operators import NumericType

__all__ = [
    "BOUNDS",
    "EPSILON",
    "EXACT_INT",
    "FLOAT_EPSILON",
    "MARGIN",
    "NUMERIC_OPS",
    "exact_numeric",
    "to_decimal",
]

#: business-rules' numeric tolerance, as a Decimal (exact path) and as float thresholds.
EPSILON: Decimal = NumericType.EPSILON
FLOAT_EPSILON = float(EPSILON)
#: Half-width of the band around a threshold where the float difference is not trusted. Outside it
#: the float difference (correctly rounded, relative error 2**-53) is on the same side as the exact one.
MARGIN = 1e-12
#: Integers beyond this are not exactly representable as floats: always compare them exactly.
EXACT_INT = 2**53

NUMERIC_OPS = (
    "equal_to",
    "greater_than",
    "greater_than_or_equal_to",
    "less_than",
    "less_than_or_equal_to",
)

# Every numeric operator is a test of the exact difference ``dd = D(value) - D(threshold)`` (rounded in
# the current Decimal context, as business-rules computes it) against -EPSILON / +EPSILON:
#   gt: dd > E   gte: dd >= -E   eq: -E <= dd <= E   lt: dd < -E   lte: dd <= E
# (gte is "gt or eq", lte is "lt or eq"; Decimal rounding is sign-symmetric so other - value == -dd.)
BOUNDS: dict[str, tuple[float | None, bool, float | None, bool]] = {
    # (low, low inclusive, high, high inclusive) on dd
    "greater_than": (FLOAT_EPSILON, False, None, False),
    "greater_than_or_equal_to": (-FLOAT_EPSILON, True, None, False),
    "equal_to": (-FLOAT_EPSILON, True, FLOAT_EPSILON, True),
    "less_than": (None, False, -FLOAT_EPSILON, False),
    "less_than_or_equal_to": (None, False, FLOAT_EPSILON, True),
}


def to_decimal(x: float | int | Decimal) -> Decimal:
    """The Decimal business-rules' NumericType casts a value to (exact for floats).

    ``Decimal(float)`` is exact, so it has the same value as business-rules' ``float_to_decimal``
    (which loops over contexts for Python 2.6) at a fraction of the cost.
    """
    if isinstance(x, float):
        return Decimal(x)
    if isinstance(x, Decimal):
        return x
    return Decimal(x)


def exact_numeric(op: str, value: float | int, threshold: float | int) -> bool:
    """business-rules' own arithmetic for ``value <op> threshold`` (the slow, exact path)."""
    dd = to_decimal(value) - to_decimal(threshold)
    if op == "greater_than":
        return dd > EPSILON
    if op == "greater_than_or_equal_to":
        return dd >= -EPSILON
    if op == "equal_to":
        return -EPSILON <= dd <= EPSILON
    if op == "less_than":
        return dd < -EPSILON
    if op == "less_than_or_equal_to":
        return dd <= EPSILON
    raise ValueError(f"'{op}' is not a numeric operator")
