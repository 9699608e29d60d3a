"""What a request costs: USD from each token type's count x its price, then credits x the power level.

The token types and how they nest follow genai-prices' units, so a usage costs here exactly what
genai-prices' own calculation says (tests/gateway/test_price_catalog.py compares both):

- `input` is every input token and `output` every output token; each other type is a part of
  them, identified by its dimensions (cache_read is the input tokens read from the cache,
  cache_audio_read the audio ones among those, reasoning the output tokens spent thinking, ...).
- A type with no price of its own (NULL in model_prices) is priced as its parent: its tokens stay
  in the parent's count. A priced type's tokens are taken out of every ancestor's count (the
  "leaf" counts), so no token is priced twice.
- A tiered price ("cliff") applies to every token of its type once the request's input tokens
  (all of them) are above the tier's start.

credits = USD / usd_per_credit x multiplier, rounded half-up to the ledger's 6 decimal places.
Everything is Decimal; no float is involved.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from ledger.money.values import CREDIT_QUANTUM

MILLION = Decimal(1_000_000)

# Each token type's dimensions (genai-prices' units: input_tokens, cache_read_tokens, ...).
DIMENSIONS: Mapping[str, frozenset[tuple[str, str]]] = MappingProxyType(
    {
        name: frozenset(dims.items())
        for name, dims in {
            "input": {"direction": "input"},
            "cache_read": {"direction": "input", "token_type": "cache_read"},
            "cache_write": {"direction": "input", "token_type": "cache_write"},
            "cache_write_1h": {"direction": "input", "token_type": "cache_write", "cache_ttl": "1h"},
            "input_audio": {"direction": "input", "modality": "audio"},
            "cache_audio_read": {"direction": "input", "modality": "audio", "token_type": "cache_read"},
            "input_image": {"direction": "input", "modality": "image"},
            "cache_image_read": {"direction": "input", "modality": "image", "token_type": "cache_read"},
            "output": {"direction": "output"},
            "reasoning": {"direction": "output", "token_type": "reasoning"},
            "output_audio": {"direction": "output", "modality": "audio"},
            "output_image": {"direction": "output", "modality": "image"},
        }.items()
    }
)
TOKEN_TYPES = tuple(DIMENSIONS)
INPUT_TYPES = tuple(name for name in TOKEN_TYPES if ("direction", "input") in DIMENSIONS[name])
OUTPUT_TYPES = tuple(name for name in TOKEN_TYPES if ("direction", "output") in DIMENSIONS[name])
# genai-prices' names: usage keys and price keys
GENAI_USAGE_KEYS = MappingProxyType(
    {name: "output_reasoning_tokens" if name == "reasoning" else f"{name}_tokens" for name in TOKEN_TYPES}
)
GENAI_PRICE_KEYS = MappingProxyType(
    {name: "output_reasoning_mtok" if name == "reasoning" else f"{name}_mtok" for name in TOKEN_TYPES}
)
# model_prices' column of each type
PRICE_COLUMNS = MappingProxyType({name: f"{name}_usd_per_mtok" for name in TOKEN_TYPES})


def ancestors(name: str) -> list[str]:
    """The types `name` is a part of (input is every input type's ancestor)."""
    return [other for other in TOKEN_TYPES if other != name and DIMENSIONS[other] < DIMENSIONS[name]]


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """One request's token counts. `input` and `output` are totals; every other count is a part of
    its ancestors' (cache_write_1h of cache_write, cache_audio_read of cache_read and input_audio,
    all of input or output)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    input_audio: int = 0
    cache_audio_read: int = 0
    input_image: int = 0
    cache_image_read: int = 0
    reasoning: int = 0
    output_audio: int = 0
    output_image: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def consistent(self) -> tuple[TokenCounts, list[str]]:
        """These counts with every part fitted inside what contains it (so no leaf count is
        negative, whatever is priced), and what had to be cut. The input parts are fitted in
        this order: cache reads, cache writes (the 1-hour ones inside them), then audio and image
        tokens, whose cached parts are inside the cache reads."""
        cut: list[str] = []

        def fit(name: str, value: int, most: int, least: int = 0) -> int:
            fitted = min(max(value, least), max(most, least))
            if fitted != value:
                cut.append(f"{name} {value} does not fit: counted as {fitted}")
            return fitted

        c = self
        read = fit("cache_read", c.cache_read, c.input)
        write = fit("cache_write", c.cache_write, c.input - read)
        write_1h = fit("cache_write_1h", c.cache_write_1h, write)
        uncached = c.input - read - write  # what audio and image tokens not read from the cache fit in
        audio_read = fit("cache_audio_read", c.cache_audio_read, min(read, c.input_audio))
        audio = fit("input_audio", c.input_audio, audio_read + uncached)
        uncached -= audio - audio_read
        image_read = fit("cache_image_read", c.cache_image_read, min(read - audio_read, c.input_image))
        image = fit("input_image", c.input_image, image_read + uncached)
        reasoning = fit("reasoning", c.reasoning, c.output)
        output_audio = fit("output_audio", c.output_audio, c.output - reasoning)
        output_image = fit("output_image", c.output_image, c.output - reasoning - output_audio)
        fitted = TokenCounts(
            c.input,
            c.output,
            read,
            write,
            write_1h,
            audio,
            audio_read,
            image,
            image_read,
            reasoning,
            output_audio,
            output_image,
        )
        return fitted, cut


@dataclass(frozen=True, slots=True)
class Tier:
    above: int  # input tokens: the tier's price applies when the request's input is above this
    usd_per_mtok: Decimal


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's prices at a provider, USD per 1M tokens of each type (None: priced as its parent)."""

    provider: str
    model: str
    input_usd_per_mtok: Decimal
    output_usd_per_mtok: Decimal
    context_window: int
    max_output_tokens: int
    cache_read_usd_per_mtok: Decimal | None = None
    cache_write_usd_per_mtok: Decimal | None = None
    cache_write_1h_usd_per_mtok: Decimal | None = None
    input_audio_usd_per_mtok: Decimal | None = None
    cache_audio_read_usd_per_mtok: Decimal | None = None
    input_image_usd_per_mtok: Decimal | None = None
    cache_image_read_usd_per_mtok: Decimal | None = None
    reasoning_usd_per_mtok: Decimal | None = None
    output_audio_usd_per_mtok: Decimal | None = None
    output_image_usd_per_mtok: Decimal | None = None
    # token type -> its tiers, ascending by `above`
    tiers: Mapping[str, tuple[Tier, ...]] = field(default_factory=dict)

    # Derived once (a request prices against these many times): the types priced on their own,
    # most specific first (the order leaves are taken in); per type, the priced types whose price it
    # takes (itself, or its most specific priced parents); the input counts where a tier starts;
    # and the dearest prices already asked for.
    priced: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())
    resolution: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False, default_factory=dict)
    breakpoints: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())
    _dearest: dict[tuple[tuple[str, ...], int], Decimal] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        priced = self._priced_types()
        resolution: dict[str, tuple[str, ...]] = {}
        for name in TOKEN_TYPES:
            if self.own_price(name) is not None:
                resolution[name] = (name,)
                continue
            candidates = [a for a in ancestors(name) if a in priced]
            resolution[name] = tuple(
                a for a in candidates if not any(DIMENSIONS[a] < DIMENSIONS[b] for b in candidates)
            )
        object.__setattr__(self, "priced", priced)
        object.__setattr__(self, "resolution", resolution)
        starts = {tier.above + 1 for tiers in self.tiers.values() for tier in tiers}
        object.__setattr__(self, "breakpoints", tuple(sorted(starts)))

    def own_price(self, name: str) -> Decimal | None:
        price: Decimal | None = getattr(self, PRICE_COLUMNS[name])
        return price

    def _priced_types(self) -> tuple[str, ...]:
        """The types with a price of their own, most specific first. A type both of whose parents
        are priced (cached audio read when cache reads and audio input are) is priced too, at the
        dearer parent's price if it has none: else its tokens would come out of the input's count
        twice. (genai-prices refuses such a price sheet; an operator's can have it.)"""
        priced = [name for name in TOKEN_TYPES if name in ("input", "output") or self.own_price(name) is not None]
        for name in TOKEN_TYPES:
            parents = [a for a in ancestors(name) if a not in ("input", "output")]
            if name not in priced and len(parents) > 1 and all(p in priced for p in parents):
                priced.append(name)
        return tuple(sorted(priced, key=lambda name: (-len(DIMENSIONS[name]), name)))

    def price_at(self, name: str, input_tokens: int) -> Decimal:
        """The USD per 1M tokens of type `name` for a request of `input_tokens` input tokens: its
        own price at the tier the input reaches, else its most specific priced parents' (the
        dearest of them)."""
        return max(self._tiered(own, input_tokens) for own in self.resolution[name])

    def _tiered(self, name: str, input_tokens: int) -> Decimal:
        price = self.own_price(name)
        assert price is not None, f"{name} has a price of its own"
        for tier in self.tiers.get(name, ()):
            if input_tokens > tier.above:
                price = tier.usd_per_mtok
        return price

    def dearest(self, names: tuple[str, ...], input_tokens: int) -> Decimal:
        """The highest price a token of these types can have in a request of at most
        `input_tokens` input tokens (any tier it can reach)."""
        reached = bisect_right(self.breakpoints, input_tokens)  # the tiers a larger input could reach
        key = (names, reached)
        if (known := self._dearest.get(key)) is not None:
            return known
        points = (0, *self.breakpoints[:reached])
        dearest = max(self.price_at(name, at) for name in names for at in points)
        self._dearest[key] = dearest
        return dearest


def leaf_counts(price: ModelPrice, counts: TokenCounts) -> dict[str, int]:
    """Each priced type's own tokens: its count less its priced parts' (genai-prices'
    compute_leaf_values, for these types). `counts` must be consistent()."""
    priced = price.priced
    leaves: dict[str, int] = {}
    for name in priced:
        parts = [other for other in priced if other != name and DIMENSIONS[name] < DIMENSIONS[other]]
        leaves[name] = getattr(counts, name) - sum(leaves[part] for part in parts)
    return leaves


def cost(price: ModelPrice, counts: TokenCounts) -> Decimal:
    """USD, exact: each priced type's leaf count x its price (at the tier the input reaches) / 1M."""
    leaves = leaf_counts(price, counts)
    return (
        sum(
            (leaf * price.price_at(name, counts.input) for name, leaf in leaves.items()),
            Decimal(0),
        )
        / MILLION
    )


def cost_usd(price: ModelPrice, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """USD of plain input and output tokens (no cached, reasoning, audio or image part)."""
    return cost(price, TokenCounts(input=prompt_tokens, output=completion_tokens))


def most_cost(
    price: ModelPrice, prompt_tokens: int, completion_tokens: int, types: Collection[str] = TOKEN_TYPES
) -> Decimal:
    """The most `prompt_tokens` input and `completion_tokens` output tokens can cost, however they
    split into `types` (those the API can report; the others count 0): each at the dearest price of
    its direction among them."""
    input_price = price.dearest(tuple(t for t in INPUT_TYPES if t in types or t == "input"), prompt_tokens)
    output_price = price.dearest(tuple(t for t in OUTPUT_TYPES if t in types or t == "output"), prompt_tokens)
    return (prompt_tokens * input_price + completion_tokens * output_price) / MILLION


def credits_for(usd: Decimal, *, usd_per_credit: Decimal, multiplier: Decimal) -> Decimal:
    return (usd / usd_per_credit * multiplier).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)
