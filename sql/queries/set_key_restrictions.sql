-- Sets the restrictions of gateway key $2 of workspace $1: allowed models (patterns), providers
-- and client networks (NULL: no restriction); its id, or no row.
UPDATE gateway_api_keys SET allowed_models = $3, allowed_providers = $4, allowed_ips = $5::text[]::cidr[]
 WHERE user_id = $1 AND id = $2
RETURNING id
