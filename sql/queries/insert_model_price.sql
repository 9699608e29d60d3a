-- Adds a model's price at a provider and returns the row; a known (provider, model) raises
-- unique_violation, a value out of range check_violation.
INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *
