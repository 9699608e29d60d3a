"""What a request costs: USD from tokens x the model's prices, then credits x the power level.

credits = (prompt x input + completion x output) / 1M / usd_per_credit x multiplier, rounded
half-up to the ledger's 6 decimal places. Everything is Decimal; no float is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ledger.money.values import CREDIT_QUANTUM

MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    provider: str
    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_window: int
    max_output_tokens: int


def cost_usd(price: ModelPrice, prompt_tokens: int, completion_tokens: int) -> Decimal:
    return (prompt_tokens * price.input_usd_per_mtok + completion_tokens * price.output_usd_per_mtok) / MILLION


def credits_for(usd: Decimal, *, usd_per_credit: Decimal, multiplier: Decimal) -> Decimal:
    return (usd / usd_per_credit * multiplier).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)
