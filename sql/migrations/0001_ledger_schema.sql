-- The credit ledger's tables, seeded catalogues and named indexes (seed 003 names kept exactly).
--
-- Money is NUMERIC everywhere. Credit amounts carry 6 decimal places: a cheap request costs a
-- few thousandths of a credit, and 1e-6 credit is far below a cent at any sane credit price.
-- Balances are written only by the stored functions of 0002 (a trigger there enforces it).

-- Subscription tiers. monthly_allowance NULL = unlimited.
CREATE TABLE subscription_tiers (
    tier              text PRIMARY KEY CHECK (tier ~ '^[a-z][a-z0-9_]*$'),
    display_name      text NOT NULL,
    price_usd         numeric(12, 2) NOT NULL CHECK (price_usd >= 0),
    monthly_allowance numeric(20, 6) CHECK (monthly_allowance >= 0),
    description       text,
    stripe_price_id   text,
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

INSERT INTO subscription_tiers (tier, display_name, price_usd, monthly_allowance, description) VALUES
    ('trial',        'Trial',          0.00,   100, 'Free tier (limited credits)'),
    ('starter',      'Starter',       19.00,  1000, '$19/month, 1,000 credits'),
    ('professional', 'Professional',  49.00, 10000, '$49/month, 10,000 credits'),
    ('enterprise',   'Enterprise',    99.00,  NULL, '$99/month, unlimited credits');

-- Power levels: cost multiplier and routing preference per level.
CREATE TABLE power_level_configs (
    power_level         text PRIMARY KEY CHECK (power_level ~ '^[a-z][a-z0-9_]*$'),
    cost_multiplier     numeric(6, 3) NOT NULL CHECK (cost_multiplier > 0),
    max_latency_ms      integer NOT NULL CHECK (max_latency_ms > 0),
    quality_threshold   numeric(4, 3) NOT NULL CHECK (quality_threshold BETWEEN 0 AND 1),
    preferred_providers text[] NOT NULL CHECK (cardinality(preferred_providers) > 0),
    description         text,
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO power_level_configs
    (power_level, cost_multiplier, max_latency_ms, quality_threshold, preferred_providers, description)
VALUES
    ('eco',       0.7, 5000, 0.70, ARRAY['openrouter', 'together', 'deepinfra'], 'ECO mode: cheapest providers'),
    ('balanced',  1.0, 3000, 0.85, ARRAY['openai', 'anthropic', 'openrouter'],  'BALANCED mode'),
    ('precision', 1.5, 2000, 0.95, ARRAY['anthropic', 'openai'],                'PRECISION mode: best quality');

-- Credit packages sold through Stripe.
CREATE TABLE credit_packages (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL UNIQUE,
    credits             numeric(20, 6) NOT NULL CHECK (credits > 0),
    price_usd           numeric(12, 2) NOT NULL CHECK (price_usd > 0),
    discount_percentage numeric(5, 2) NOT NULL DEFAULT 0 CHECK (discount_percentage BETWEEN 0 AND 100),
    description         text,
    stripe_price_id     text,
    sort_order          integer NOT NULL DEFAULT 0,
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO credit_packages (name, credits, price_usd, discount_percentage, description, sort_order) VALUES
    ('Starter Pack',     100,  10.00,  0, '100 credits',                 1),
    ('Value Pack',       500,  45.00, 10, '500 credits, most popular',   2),
    ('Pro Pack',        1000,  80.00, 20, '1,000 credits, best value',   3),
    ('Enterprise Pack', 5000, 350.00, 30, '5,000 credits',               4);

-- Model prices per provider, USD per 1M tokens. Operators edit these rows.
CREATE TABLE model_prices (
    provider             text NOT NULL,
    model                text NOT NULL,
    input_usd_per_mtok   numeric(12, 6) NOT NULL CHECK (input_usd_per_mtok >= 0),
    output_usd_per_mtok  numeric(12, 6) NOT NULL CHECK (output_usd_per_mtok >= 0),
    context_window       integer NOT NULL DEFAULT 128000 CHECK (context_window > 0),
    max_output_tokens    integer NOT NULL DEFAULT 4096 CHECK (max_output_tokens > 0),
    is_active            boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, model)
);

-- Seed 003's "Typical Credit Costs"; openrouter resells the same models at the same prices.
INSERT INTO model_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, context_window, max_output_tokens)
SELECT p.provider, m.model, m.input_price, m.output_price, m.context_window, m.max_output
FROM (VALUES
        ('openai',    'gpt-3.5-turbo',            0.50,  1.50,  16385, 4096),
        ('openai',    'gpt-4',                   30.00, 60.00,   8192, 8192),
        ('openai',    'gpt-4-turbo',             10.00, 30.00, 128000, 4096),
        ('anthropic', 'claude-3-opus-20240229',  15.00, 75.00, 200000, 4096),
        ('anthropic', 'claude-3-sonnet-20240229', 3.00, 15.00, 200000, 4096),
        ('anthropic', 'claude-3-haiku-20240307',  0.25,  1.25, 200000, 4096)
     ) AS m (origin, model, input_price, output_price, context_window, max_output)
CROSS JOIN LATERAL (VALUES (m.origin), ('openrouter')) AS p (provider);

-- One row per end user: the purchased balance, the tier's monthly allowance and its use.
-- monthly_allowance NULL = unlimited; the default 0 keeps a bare INSERT from granting unlimited use.
-- credits_held is the sum of open holds (requests in flight); it is not a balance.
CREATE TABLE user_credits (
    user_id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                   text,
    balance                 numeric(20, 6) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    tier                    text NOT NULL DEFAULT 'trial' REFERENCES subscription_tiers (tier),
    power_level             text NOT NULL DEFAULT 'balanced' REFERENCES power_level_configs (power_level),
    monthly_allowance       numeric(20, 6) DEFAULT 0 CHECK (monthly_allowance >= 0),
    credits_used_this_month numeric(20, 6) NOT NULL DEFAULT 0 CHECK (credits_used_this_month >= 0),
    credits_held            numeric(20, 6) NOT NULL DEFAULT 0 CHECK (credits_held >= 0),
    billing_cycle_start     timestamptz NOT NULL DEFAULT now(),
    stripe_customer_id      text UNIQUE,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Append-only audit log: amount is the signed change of balance, balance_after the balance it
-- left. A usage debit drawn (partly) from the monthly allowance records that part in
-- allowance_used; its amount is only what came out of the purchased balance.
CREATE TABLE credit_transactions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES user_credits (user_id),
    transaction_type  text NOT NULL
        CHECK (transaction_type IN ('purchase', 'usage', 'refund', 'admin_adjustment', 'bonus')),
    amount            numeric(20, 6) NOT NULL,
    balance_after     numeric(20, 6) NOT NULL CHECK (balance_after >= 0),
    allowance_used    numeric(20, 6) NOT NULL DEFAULT 0 CHECK (allowance_used >= 0),
    description       text,
    reference_id      text,
    payment_intent_id text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (amount <> 0 OR allowance_used > 0)
);

-- Requests in flight: credits reserved before the upstream call, settled or released after.
CREATE TABLE credit_holds (
    hold_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES user_credits (user_id),
    request_id     text NOT NULL UNIQUE,
    amount         numeric(20, 6) NOT NULL CHECK (amount > 0),
    status         text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'settled', 'released', 'expired')),
    description    text,
    expires_at     timestamptz NOT NULL,
    settle_amount  numeric(20, 6),
    charged        numeric(20, 6),
    transaction_id bigint REFERENCES credit_transactions (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz
);

-- Gateway API keys (seed 000): only a SHA-256 of the key is stored, with a visible prefix.
CREATE TABLE gateway_api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES user_credits (user_id),
    key_hash     text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    name         text,
    is_active    boolean NOT NULL DEFAULT true,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- BYOK provider keys, AES-GCM encrypted by the service; plaintext never reaches this table.
CREATE TABLE user_provider_keys (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid NOT NULL REFERENCES user_credits (user_id),
    provider               text NOT NULL,
    key_name               text NOT NULL,
    encrypted_key          bytea NOT NULL,
    key_hint               text,
    is_default             boolean NOT NULL DEFAULT false,
    is_active              boolean NOT NULL DEFAULT true,
    last_used_at           timestamptz,
    usage_count_this_month integer NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, provider, key_name)
);

-- One row per metered request.
CREATE TABLE llm_usage_log (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id        text NOT NULL,
    user_id           uuid NOT NULL REFERENCES user_credits (user_id),
    gateway_key_id    uuid REFERENCES gateway_api_keys (id),
    provider          text,
    model             text NOT NULL,
    power_level       text,
    prompt_tokens     integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    total_tokens      integer NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    cost_usd          numeric(20, 10) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    cost_multiplier   numeric(6, 3),
    credits_used      numeric(20, 6) NOT NULL DEFAULT 0 CHECK (credits_used >= 0),
    latency_ms        integer,
    success           boolean NOT NULL,
    status_code       integer,
    error_message     text,
    is_byok           boolean NOT NULL DEFAULT false,
    hold_id           uuid REFERENCES credit_holds (hold_id),
    transaction_id    bigint REFERENCES credit_transactions (id),
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Seed 003's indexes, by the seed's names.
CREATE INDEX idx_user_credits_user_id ON user_credits (user_id);
CREATE INDEX idx_credit_transactions_user_date ON credit_transactions (user_id, created_at DESC);
CREATE INDEX idx_credit_transactions_type ON credit_transactions (transaction_type);
CREATE INDEX idx_llm_usage_log_user_date ON llm_usage_log (user_id, created_at DESC);
CREATE UNIQUE INDEX idx_llm_usage_log_request_id ON llm_usage_log (request_id);
CREATE INDEX idx_llm_usage_log_model ON llm_usage_log (model);
CREATE INDEX idx_llm_usage_log_provider ON llm_usage_log (provider);
CREATE INDEX idx_llm_usage_log_success ON llm_usage_log (success);

-- The idempotency key: one transaction per (type, reference). Retries find the first one.
CREATE UNIQUE INDEX idx_credit_transactions_reference
    ON credit_transactions (transaction_type, reference_id) WHERE reference_id IS NOT NULL;
CREATE INDEX idx_credit_holds_open ON credit_holds (user_id, expires_at) WHERE status = 'held';
CREATE INDEX idx_credit_holds_expiry ON credit_holds (expires_at) WHERE status = 'held';
CREATE INDEX idx_gateway_api_keys_user ON gateway_api_keys (user_id);
CREATE INDEX idx_user_provider_keys_user ON user_provider_keys (user_id, provider) WHERE is_active;
