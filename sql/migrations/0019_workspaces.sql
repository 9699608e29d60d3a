-- Workspaces for teams (issue 18): the wallet belongs to a workspace; people sign in and are
-- members with a role; gateway keys belong to a project; every change is in an append-only audit
-- log written by triggers in the same transaction as the change.
--
-- The wallet stays where it is: `user_credits` (the seed's name) with its money functions as the
-- only writers. A workspace's id IS its wallet's `user_credits.user_id`, so every existing key,
-- transaction, usage row, ops query and endpoint keeps working: each existing account becomes a
-- personal workspace with the same id (below), and every account created from now on gets one
-- (trigger on user_credits). Personal and team workspaces differ only in their members.
--
-- New project SQLSTATEs (LG030-LG039, workspaces and people):
--   LG030  the last owner of a workspace cannot leave or be demoted
--   LG031  a gateway key's project is not a usable project of the key's workspace

-- ---- workspaces and projects ------------------------------------------------------------------

CREATE TABLE workspaces (
    id uuid PRIMARY KEY REFERENCES user_credits (user_id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    kind text NOT NULL DEFAULT 'personal' CHECK (kind IN ('personal', 'team')),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workspaces IS
    'Seed 004 workspaces. id = the wallet''s user_credits.user_id: balance, allowance, tier, subscription, power level and Stripe customer live on that row.';

CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name !~ '[[:cntrl:]]'),
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    CHECK (NOT (is_default AND archived_at IS NOT NULL))
);
CREATE UNIQUE INDEX projects_one_default ON projects (workspace_id) WHERE is_default;
CREATE UNIQUE INDEX projects_name_per_workspace ON projects (workspace_id, lower(name)) WHERE archived_at IS NULL;
COMMENT ON TABLE projects IS
    'Seed 004 projects: every gateway key belongs to one; each workspace has one default project, which cannot be archived.';

-- Every wallet is a workspace with a default project, from the moment it exists.
CREATE FUNCTION ledger_wallet_workspace() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO workspaces (id, name, kind)
    VALUES (NEW.user_id, left(coalesce(nullif(btrim(regexp_replace(NEW.email, '[[:cntrl:]]', '', 'g')), ''),
                                       'Personal workspace'), 100), 'personal');
    INSERT INTO projects (workspace_id, name, is_default) VALUES (NEW.user_id, 'Default project', true);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ledger_wallet_workspace() IS
    'Guarantees every user_credits row is a workspace (personal until made a team) with its default project.';

CREATE TRIGGER user_credits_workspace AFTER INSERT ON user_credits
    FOR EACH ROW EXECUTE FUNCTION ledger_wallet_workspace();

INSERT INTO workspaces (id, name, kind)
SELECT user_id, left(coalesce(nullif(btrim(regexp_replace(email, '[[:cntrl:]]', '', 'g')), ''), 'Personal workspace'), 100),
       'personal'
  FROM user_credits;
INSERT INTO projects (workspace_id, name, is_default) SELECT id, 'Default project', true FROM workspaces;

-- ---- people -----------------------------------------------------------------------------------

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'),
    name text CHECK (name IS NULL OR (length(name) <= 100 AND name !~ '[[:cntrl:]]')),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    email_verified_at timestamptz,
    mfa_secret_encrypted bytea,
    mfa_enabled_at timestamptz,
    mfa_last_step bigint,
    failed_login_attempts integer NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    locked_until timestamptz,
    last_login_at timestamptz,
    last_login_ip inet,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((mfa_enabled_at IS NULL) OR (mfa_secret_encrypted IS NOT NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
COMMENT ON TABLE users IS
    'People who sign in (seeds 000 and 004): email unique case-insensitively, argon2id password hash, TOTP secret encrypted like BYOK keys, lockout.';

CREATE TABLE user_backup_codes (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash text NOT NULL CHECK (length(code_hash) = 64),
    used_at timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
COMMENT ON TABLE user_backup_codes IS 'One-time TOTP backup codes, SHA-256 hashed; a used code has used_at.';

CREATE TABLE user_tokens (
    token_hash text PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);
COMMENT ON TABLE user_tokens IS 'Email verification and password reset tokens: SHA-256 hashed, one use, expiring.';

CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    workspace_id uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    mfa_pending boolean NOT NULL DEFAULT false,
    device text CHECK (length(device) <= 300),
    ip inet,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_active_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text CHECK (revoked_reason IS NULL OR length(revoked_reason) <= 200)
);
CREATE INDEX sessions_of_user ON sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE sessions IS
    'Seed 004 sessions: a dashboard sign-in. token_hash is the SHA-256 of the nonce in the signed cookie; mfa_pending sessions only reach the TOTP step.';

-- ---- members, invitations, admin keys ---------------------------------------------------------

CREATE TABLE workspace_members (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_of_user ON workspace_members (user_id);
COMMENT ON TABLE workspace_members IS 'Seed 004 workspace_members: one role per person per workspace.';

-- The last owner stays: a workspace that had an owner keeps at least one. The workspace row is
-- locked first, so two owners demoting each other at once cannot both pass the count.
CREATE FUNCTION ledger_keep_an_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.role <> 'OWNER' OR (TG_OP = 'UPDATE' AND NEW.role = 'OWNER') THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM workspaces WHERE id = OLD.workspace_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;  -- the workspace itself is being deleted
    END IF;
    IF NOT EXISTS (SELECT 1 FROM workspace_members
                    WHERE workspace_id = OLD.workspace_id AND role = 'OWNER') THEN
        RAISE EXCEPTION 'the last owner of a workspace cannot leave it or stop being its owner'
            USING ERRCODE = 'LG030',
                  HINT = 'Make another member an owner first.';
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ledger_keep_an_owner() IS
    'Guarantees a workspace with an owner keeps at least one: refuses removing or demoting the last (LG030).';
CREATE TRIGGER workspace_members_keep_an_owner AFTER UPDATE OF role OR DELETE ON workspace_members
    FOR EACH ROW EXECUTE FUNCTION ledger_keep_an_owner();

CREATE TABLE workspace_invitations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'),
    role text NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'DEVELOPER', 'VIEWER')),
    token_hash text NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    invited_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at timestamptz
);
CREATE INDEX workspace_invitations_of_workspace ON workspace_invitations (workspace_id, created_at DESC);
COMMENT ON TABLE workspace_invitations IS
    'Seed 004 workspaces_invitations: token SHA-256 hashed, one use, expiring, revocable; good for its workspace only.';

CREATE TABLE admin_api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key_hash text NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    prefix text NOT NULL,
    name text CHECK (name IS NULL OR (length(name) <= 100 AND name !~ '[[:cntrl:]]')),
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX admin_api_keys_of_workspace ON admin_api_keys (workspace_id);
COMMENT ON TABLE admin_api_keys IS
    'Keys of the administration API (sk-lg-admin-...): SHA-256 hashed, shown once; they cannot make metered calls.';

-- ---- gateway keys belong to projects; usage rows name the project -----------------------------

ALTER TABLE gateway_api_keys ADD COLUMN project_id uuid REFERENCES projects (id);
ALTER TABLE gateway_api_keys ADD COLUMN created_by uuid REFERENCES users (id) ON DELETE SET NULL;
UPDATE gateway_api_keys k SET project_id = p.id FROM projects p WHERE p.workspace_id = k.user_id AND p.is_default;
ALTER TABLE gateway_api_keys ALTER COLUMN project_id SET NOT NULL;
CREATE INDEX gateway_api_keys_of_project ON gateway_api_keys (project_id);

-- A key without a project goes to its workspace's default one; a key's project is a live project
-- of the key's own workspace.
CREATE FUNCTION ledger_key_project() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.project_id IS NULL THEN
        SELECT id INTO NEW.project_id FROM projects WHERE workspace_id = NEW.user_id AND is_default;
    ELSIF NOT EXISTS (SELECT 1 FROM projects
                       WHERE id = NEW.project_id AND workspace_id = NEW.user_id AND archived_at IS NULL) THEN
        RAISE EXCEPTION 'project % is not an active project of this workspace', NEW.project_id
            USING ERRCODE = 'LG031', HINT = 'List the workspace''s projects and pick one that is not archived.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ledger_key_project() IS
    'Guarantees every gateway key is in a live project of its own workspace (the default one when none is named).';
CREATE TRIGGER gateway_api_keys_project BEFORE INSERT OR UPDATE OF project_id, user_id ON gateway_api_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_key_project();

ALTER TABLE llm_usage_log ADD COLUMN project_id uuid;
UPDATE llm_usage_log l SET project_id = k.project_id FROM gateway_api_keys k WHERE k.id = l.gateway_key_id;
CREATE INDEX llm_usage_log_project ON llm_usage_log (project_id, id) WHERE project_id IS NOT NULL;

CREATE FUNCTION ledger_usage_project() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.project_id IS NULL AND NEW.gateway_key_id IS NOT NULL THEN
        SELECT project_id INTO NEW.project_id FROM gateway_api_keys WHERE id = NEW.gateway_key_id;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION ledger_usage_project() IS 'Names on each usage row the project its gateway key was in when the request ran.';
CREATE TRIGGER llm_usage_log_project BEFORE INSERT ON llm_usage_log
    FOR EACH ROW EXECUTE FUNCTION ledger_usage_project();

-- ---- the audit log ----------------------------------------------------------------------------

CREATE TABLE audit_logs (
    id bigserial PRIMARY KEY,
    workspace_id uuid,
    person_id uuid,
    actor_type text NOT NULL CHECK (actor_type IN ('person', 'admin_key', 'gateway_key', 'operator', 'system', 'database')),
    actor_id text,
    actor_label text,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    before jsonb,
    after jsonb,
    ip inet,
    user_agent text,
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_of_workspace ON audit_logs (workspace_id, id);
CREATE INDEX audit_logs_of_person ON audit_logs (person_id, id) WHERE person_id IS NOT NULL;
COMMENT ON TABLE audit_logs IS
    'Seeds 002/004 audit_logs: who changed what, written by triggers in the same transaction as the change; append-only. Never holds a secret.';
COMMENT ON COLUMN audit_logs.person_id IS 'The person the event is about (sign-ins, MFA, sessions) or who acted.';

CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Who is acting: the service sets `ledger.actor` (JSON: type, id, label, person, ip, user_agent,
-- request_id) for its transaction; a change made without it (psql, a script) is the database
-- role's, so nothing goes unrecorded.
CREATE FUNCTION ledger_actor() RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_text text := current_setting('ledger.actor', true);
BEGIN
    IF v_text IS NULL OR v_text = '' THEN
        RETURN jsonb_build_object('type', 'database', 'label', session_user);
    END IF;
    RETURN v_text::jsonb;
END $$;
COMMENT ON FUNCTION ledger_actor() IS
    'Who acts in this transaction (ledger.actor, set by the service); the database role when nobody said.';

-- One audit row, with the acting party of this transaction.
CREATE FUNCTION ledger_audit(p_workspace_id uuid, p_person_id uuid, p_action text, p_resource_type text,
                             p_resource_id text, p_before jsonb, p_after jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_actor jsonb := ledger_actor();
    v_id    bigint;
BEGIN
    INSERT INTO audit_logs (workspace_id, person_id, actor_type, actor_id, actor_label, action, resource_type,
                            resource_id, before, after, ip, user_agent, request_id)
    VALUES (p_workspace_id, coalesce(p_person_id, (v_actor ->> 'person')::uuid), v_actor ->> 'type',
            v_actor ->> 'id', left(v_actor ->> 'label', 200), p_action, p_resource_type, p_resource_id,
            p_before, p_after, (v_actor ->> 'ip')::inet, left(v_actor ->> 'user_agent', 300),
            left(v_actor ->> 'request_id', 100))
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION ledger_audit(uuid, uuid, text, text, text, jsonb, jsonb) IS
    'Appends one audit row in the calling transaction, naming the actor set in ledger.actor.';

-- The audit trigger of every audited table: TG_ARGV[0] the resource type, TG_ARGV[1] the column
-- naming the workspace (or '-' for none), TG_ARGV[2] the column naming the person (or '-').
-- Secrets (hashes, ciphertexts) are dropped from before/after; the action says what happened:
-- created, updated, deleted, or revoked/archived/accepted/ended when that column was set.
CREATE FUNCTION ledger_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_secret    text[] := ARRAY['key_hash', 'token_hash', 'password_hash', 'mfa_secret_encrypted',
                                'encrypted_key', 'code_hash', 'mfa_last_step'];
    v_before    jsonb;
    v_after     jsonb;
    v_row       jsonb;
    v_action    text;
    v_workspace uuid;
    v_person    uuid;
BEGIN
    IF TG_OP <> 'INSERT' THEN v_before := to_jsonb(OLD) - v_secret; END IF;
    IF TG_OP <> 'DELETE' THEN v_after := to_jsonb(NEW) - v_secret; END IF;
    IF TG_OP = 'UPDATE' THEN
        IF v_before = v_after AND to_jsonb(OLD) = to_jsonb(NEW) THEN
            RETURN NULL;  -- nothing changed
        END IF;
        IF v_before = v_after THEN
            v_action := 'secret_changed';  -- only a secret column changed (a password, a re-encrypted key)
        ELSIF v_after ? 'revoked_at' AND v_before ->> 'revoked_at' IS NULL AND v_after ->> 'revoked_at' IS NOT NULL THEN
            v_action := CASE TG_TABLE_NAME WHEN 'sessions' THEN 'ended' ELSE 'revoked' END;
        ELSIF v_after ? 'archived_at' AND v_before ->> 'archived_at' IS NULL AND v_after ->> 'archived_at' IS NOT NULL THEN
            v_action := 'archived';
        ELSIF v_after ? 'accepted_at' AND v_before ->> 'accepted_at' IS NULL AND v_after ->> 'accepted_at' IS NOT NULL THEN
            v_action := 'accepted';
        ELSIF v_after ? 'is_active' AND (v_before ->> 'is_active')::boolean AND NOT (v_after ->> 'is_active')::boolean THEN
            v_action := 'deactivated';
        ELSE
            v_action := 'updated';
        END IF;
    ELSE
        v_action := CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'deleted' END;
    END IF;
    v_row := coalesce(v_after, v_before);
    IF TG_ARGV[1] <> '-' THEN v_workspace := (v_row ->> TG_ARGV[1])::uuid; END IF;
    IF TG_ARGV[2] <> '-' THEN v_person := (v_row ->> TG_ARGV[2])::uuid; END IF;
    PERFORM ledger_audit(v_workspace, v_person, TG_ARGV[0] || '.' || v_action, TG_ARGV[0],
                         coalesce(v_row ->> 'id', v_row ->> 'user_id', v_row ->> 'code', v_row ->> 'name'),
                         v_before, v_after);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ledger_audit_change() IS
    'Writes the audit row of a change to an audited table in the same transaction; never copies a secret column.';

CREATE TRIGGER audit_workspaces AFTER INSERT OR UPDATE OF name, kind OR DELETE ON workspaces
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('workspace', 'id', '-');
CREATE TRIGGER audit_projects AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('project', 'workspace_id', '-');
CREATE TRIGGER audit_workspace_members AFTER INSERT OR UPDATE OR DELETE ON workspace_members
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('member', 'workspace_id', 'user_id');
CREATE TRIGGER audit_workspace_invitations AFTER INSERT OR UPDATE OF accepted_at, revoked_at OR DELETE ON workspace_invitations
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('invite', 'workspace_id', '-');
CREATE TRIGGER audit_admin_api_keys AFTER INSERT OR UPDATE OF name, revoked_at OR DELETE ON admin_api_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('admin_api_key', 'workspace_id', '-');
CREATE TRIGGER audit_gateway_api_keys
    AFTER INSERT OR UPDATE OF name, is_active, expires_at, revoked_at, project_id OR DELETE ON gateway_api_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('api_key', 'user_id', 'created_by');
CREATE TRIGGER audit_user_provider_keys
    AFTER INSERT OR UPDATE OF key_name, is_active, is_default, encrypted_key OR DELETE ON user_provider_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('provider_key', 'user_id', '-');
-- Only the tier and power level of a wallet: its balance columns move on every request and are
-- in credit_transactions already.
CREATE TRIGGER audit_user_credits_settings AFTER UPDATE OF tier, power_level ON user_credits
    FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier OR OLD.power_level IS DISTINCT FROM NEW.power_level)
    EXECUTE FUNCTION ledger_audit_change('wallet', 'user_id', '-');
-- Grants: credits given by hand (admin adjustments and bonuses), not purchases or usage.
CREATE TRIGGER audit_credit_grants AFTER INSERT ON credit_transactions
    FOR EACH ROW WHEN (NEW.transaction_type IN ('admin_adjustment', 'bonus'))
    EXECUTE FUNCTION ledger_audit_change('grant', 'user_id', '-');
CREATE TRIGGER audit_credit_packages AFTER INSERT OR UPDATE OR DELETE ON credit_packages
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('package', '-', '-');
CREATE TRIGGER audit_model_prices AFTER INSERT OR UPDATE OR DELETE ON model_prices
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('price', '-', '-');
CREATE TRIGGER audit_power_level_configs AFTER INSERT OR UPDATE OR DELETE ON power_level_configs
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('power_level', '-', '-');
CREATE TRIGGER audit_subscription_tiers AFTER INSERT OR UPDATE OR DELETE ON subscription_tiers
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('tier', '-', '-');
-- People: their password, MFA and verification changes (never the secrets themselves); sign-ins
-- are recorded by the service with ledger_audit, as they change no audited column.
CREATE TRIGGER audit_users AFTER INSERT OR UPDATE OF email, name, password_hash, email_verified_at, mfa_enabled_at OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('person', '-', 'id');
CREATE TRIGGER audit_sessions AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_change('session', '-', 'user_id');
