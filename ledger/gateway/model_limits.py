"""Models' real output limits and the parameters they take, from LiteLLM's model table.

genai-prices carries no output limit, and a guess above a model's real one is refused upstream
(gpt-4o and gpt-4o-mini refuse max_tokens above 16,384), so the limits come from the table most
gateways read: LiteLLM's `model_prices_and_context_window.json` (MIT licence,
data/LICENSE-litellm), vendored as the few fields used (data/model_limits.json) for the providers
this gateway routes to, refreshed by `ledger prices limits FILE` from a LiteLLM JSON file or wheel.

- max_output_tokens: the most tokens the model generates in one answer;
- max_input_tokens: its context window for input, where the table gives one;
- reasoning: an OpenAI reasoning model (o-series, gpt-5): on OpenAI's chat completions it takes
  `max_completion_tokens` and refuses `max_tokens`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "model_limits.json"
TABLE_IN_WHEEL = "litellm/model_prices_and_context_window_backup.json"
# LiteLLM's provider -> the prefix its keys carry for that provider (stripped: the names clients
# send this gateway are the provider's own)
PROVIDERS = {
    "openai": "",
    "text-completion-openai": "",
    "anthropic": "",
    "openrouter": "openrouter/",
    "together_ai": "together_ai/",
    "deepinfra": "deepinfra/",
}
# OpenAI's reasoning models, where the table says nothing (a model newer than the table)
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True, slots=True)
class ModelLimits:
    max_output_tokens: int
    max_input_tokens: int | None
    reasoning: bool


@cache
def _table() -> dict[str, ModelLimits]:
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    return {
        name: ModelLimits(entry["max_output_tokens"], entry.get("max_input_tokens"), bool(entry.get("reasoning")))
        for name, entry in raw["models"].items()
    }


def limits_of(model: str) -> ModelLimits | None:
    """The model's limits by its name (as a client sends it), or None when the table has none."""
    return _table().get(model)


def takes_max_completion_tokens(model: str) -> bool:
    """Whether OpenAI's chat completions refuse `max_tokens` for this model."""
    known = limits_of(model)
    if known is not None and known.reasoning:
        return True
    bare = model.rsplit("/", 1)[-1]
    return bare.startswith(REASONING_PREFIXES)


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def vendored_fields(litellm_table: dict[str, Any]) -> dict[str, Any]:
    """The fields kept of LiteLLM's table, for the providers this gateway routes to."""
    models: dict[str, Any] = {}
    for key, entry in sorted(litellm_table.items()):
        if not isinstance(entry, dict) or entry.get("litellm_provider") not in PROVIDERS:
            continue
        prefix = PROVIDERS[entry["litellm_provider"]]
        name = key.removeprefix(prefix) if prefix else key
        most = _whole(entry.get("max_output_tokens")) or _whole(entry.get("max_tokens"))
        if most is None or entry.get("mode") not in ("chat", "completion", "responses", None):
            continue
        models[name] = {
            "max_output_tokens": most,
            "max_input_tokens": _whole(entry.get("max_input_tokens")),
            "reasoning": bool(entry.get("supports_reasoning")),
        }
    return {"source": "LiteLLM model_prices_and_context_window.json (MIT, see LICENSE-litellm)", "models": models}


def refresh(source: Path, target: Path = DATA) -> int:
    """Rewrites the vendored table from LiteLLM's JSON file, or from a LiteLLM wheel that carries it;
    returns how many models it holds."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            litellm_table = json.loads(wheel.read(TABLE_IN_WHEEL))
    else:
        litellm_table = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(litellm_table, dict):
        raise ValueError(f"{source} is not LiteLLM's model table (a JSON object of models)")
    kept = vendored_fields(litellm_table)
    target.write_text(json.dumps(kept, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    _table.cache_clear()
    return len(kept["models"])
