-- Deterministic benchmark data for `just bench` (issue 6), PostgreSQL 15+, on a migrated database.
--
--   psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 \
--        -v workspace_id=6f1c0b4e-0000-4000-8000-000000000001 -v entities=100000 -v seed=0.42 \
--        -f bench/sql/generate.sql
--
-- All three variables are optional (defaults below); `-v strict_fk=1` keeps the per-row foreign-key
-- triggers on (slower; see "Speed" below). Fills ONE workspace with:
--   * a user (OWNER of the workspace; its id is printed, for the RLS-mode peers and our JWT),
--   * three ACTIVE, connected, healthy integration connections: hubspot, salesforce, stripe
--     (definitions come from the catalog the migrations seed; the script fails if one is missing),
--   * 10 attribute definitions per entity type (person / company / customer = 30 rows),
--   * `entities` rows (as the sync engine writes them: source_type INTEGRATION, the integration's
--     definition id, external id and URL, first/last synced times, created_by NULL);
--     entity i belongs to hubspot (person) when i % 10 in 0..4, salesforce (company) in 5..7,
--     stripe (customer) in 8..9,
--   * 10 attribute values per entity and one provenance row per value (source_type INTEGRATION,
--     the entity's integration and the provider field); ~5% of the (entity, attribute) pairs are
--     user overrides (value edited, provenance USER_OVERRIDE, override_by_user, override_at, no
--     integration: what `updateEntityAttribute` writes), and such an entity's sync_version is
--     1 + its number of overrides.
--
-- Determinism: every id, value and timestamp is a hash of (seed, workspace, row): the same
-- variables give byte-identical rows on every run, whatever the plan or parallelism (no random()).
-- Timestamps are fixed offsets before 2026-01-01T00:00:00Z, never now().
--
-- Re-running with the same workspace_id first deletes that workspace (cascading to its members,
-- connections, attribute definitions, entities, values and provenance) and its bench user.
-- Nothing is created outside the `pg_temp` schema besides these rows, so PostGraphile's
-- introspection of `public` sees exactly the application schema.

\set ON_ERROR_STOP on
\if :{?workspace_id}
\else
  \set workspace_id 6f1c0b4e-0000-4000-8000-000000000001
\endif
\if :{?entities}
\else
  \set entities 100000
\endif
\if :{?seed}
\else
  \set seed 0.42
\endif

SET client_min_messages = warning;
-- 63-bit non-negative hash of a text, salted by the seed.
CREATE FUNCTION pg_temp.bench_h(t text, seed bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(t, seed) & 9223372036854775807 $$;

-- A version-4-shaped UUID made from a text (md5, with the version and variant nibbles set).
CREATE FUNCTION pg_temp.bench_uuid(t text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT overlay(overlay(md5(t) PLACING '4' FROM 13) PLACING '8' FROM 17)::uuid $$;

-- The i-th element (0-based, wrapping) of a text array.
CREATE FUNCTION pg_temp.bench_pick(a text[], i bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT a[1 + (i % cardinality(a))::int] $$;

-- The synced value of attribute `key` of an entity, as JSON. `salt` varies it (user overrides).
-- One SELECT without FROM, so the planner inlines it (and the helpers above) into the INSERTs.
CREATE FUNCTION pg_temp.bench_value(entity uuid, key text, salt text, seed bigint) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE key
        WHEN 'first_name' THEN to_jsonb(pg_temp.bench_pick(
            '{Ada,Alan,Grace,Linus,Margaret,Ken,Barbara,Dennis,Frances,John,Katherine,Edsger,Radia,Tim,Sophie,Guido}', pg_temp.bench_h(entity::text || ':first_name' || salt, seed)))
        WHEN 'last_name' THEN to_jsonb(pg_temp.bench_pick(
            '{Lovelace,Turing,Hopper,Torvalds,Hamilton,Thompson,Liskov,Ritchie,Allen,McCarthy,Johnson,Dijkstra,Perlman,Berners-Lee,Wilson,Rossum}', pg_temp.bench_h(entity::text || ':last_name' || salt, seed)))
        WHEN 'email' THEN to_jsonb(lower(
            pg_temp.bench_pick('{ada,alan,grace,linus,margaret,ken,barbara,dennis,frances,john,katherine,edsger,radia,tim,sophie,guido}', pg_temp.bench_h(entity::text || ':first_name' || salt, seed))
            || '.' || (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 100000)::text || '@'
            || pg_temp.bench_pick('{example.com,example.org,example.net,acme.test,initech.test,globex.test}', pg_temp.bench_h(entity::text || ':' || key || salt, seed) / 7)))
        WHEN 'phone' THEN to_jsonb('+1 555 ' || lpad((pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 10000000)::text, 7, '0'))
        WHEN 'job_title' THEN to_jsonb(pg_temp.bench_pick(
            '{Engineer,"Head of Sales",CTO,"Account Executive","Support Lead",Designer,"Product Manager",CFO}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'company' THEN to_jsonb(pg_temp.bench_pick(
            '{Acme,Initech,Globex,Umbrella,Hooli,"Stark Industries",Wayne,Cyberdyne,Soylent,Tyrell}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'name' THEN to_jsonb(pg_temp.bench_pick(
            '{Acme,Initech,Globex,Umbrella,Hooli,Stark,Wayne,Cyberdyne,Soylent,Tyrell,Wonka,Oscorp}', pg_temp.bench_h(entity::text || ':' || key || salt, seed))
            || ' ' || pg_temp.bench_pick('{Inc,GmbH,Ltd,LLC,SA,BV}', pg_temp.bench_h(entity::text || ':' || key || salt, seed) / 13) || ' ' || (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 100000)::text)
        WHEN 'city' THEN to_jsonb(pg_temp.bench_pick(
            '{Berlin,Paris,London,Lisbon,Austin,Toronto,Osaka,Sydney,Nairobi,Lima,Oslo,Madrid}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'country' THEN to_jsonb(pg_temp.bench_pick('{DE,FR,GB,PT,US,CA,JP,AU,KE,PE,NO,ES}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'lifecycle_stage' THEN to_jsonb(pg_temp.bench_pick(
            '{subscriber,lead,marketingqualifiedlead,salesqualifiedlead,opportunity,customer}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'lead_score' THEN to_jsonb(pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 101)
        WHEN 'website' THEN to_jsonb('https://www.company-' || (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 100000)::text || '.example')
        WHEN 'industry' THEN to_jsonb(pg_temp.bench_pick(
            '{Technology,Finance,Healthcare,Retail,Manufacturing,Education,Energy,Media}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'employees' THEN to_jsonb(1 + pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 50000)
        WHEN 'annual_revenue' THEN to_jsonb(round((pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 1000000000)::numeric / 100, 2))
        WHEN 'account_type' THEN to_jsonb(pg_temp.bench_pick('{Customer,Prospect,Partner,Reseller}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'owner_email' THEN to_jsonb('owner' || (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 50)::text || '@example.com')
        WHEN 'currency' THEN to_jsonb(pg_temp.bench_pick('{usd,eur,gbp,jpy,cad}', pg_temp.bench_h(entity::text || ':' || key || salt, seed)))
        WHEN 'balance' THEN to_jsonb((pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 200001) - 100000)
        WHEN 'delinquent' THEN to_jsonb(pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 17 = 0)
        WHEN 'customer_since' THEN to_jsonb(to_char(
            (timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 94608000)::double precision))
                AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
        WHEN 'description' THEN to_jsonb('Customer ' || (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 1000000)::text || ' — '
            || pg_temp.bench_pick('{monthly plan,annual plan,enterprise contract,trial}', pg_temp.bench_h(entity::text || ':' || key || salt, seed) / 3))
        ELSE to_jsonb(key || ' ' || (pg_temp.bench_h(entity::text || ':' || key || salt, seed) % 1000)::text)
    END
$$;

BEGIN;

CREATE TEMP TABLE bench_params ON COMMIT DROP AS
SELECT :'workspace_id'::uuid AS workspace_id,
       (:entities)::bigint AS n,
       hashtextextended('bench-seed:' || :'seed', 0) AS seed;

DO $$
BEGIN
    IF (SELECT n FROM bench_params) < 1 THEN
        RAISE EXCEPTION 'generate.sql: entities must be at least 1';
    END IF;
    IF (SELECT count(*) FROM integration_definitions
        WHERE slug IN ('hubspot', 'salesforce', 'stripe')) <> 3 THEN
        RAISE EXCEPTION 'generate.sql: the catalog lacks hubspot, salesforce or stripe (run the migrations first)';
    END IF;
END
$$;

-- The three integrations: which entity type each syncs and its share of the entities (i % 10).
CREATE TEMP TABLE bench_integrations ON COMMIT DROP AS
SELECT v.slug, v.entity_type, v.lo, v.hi, d.id AS integration_id
FROM (VALUES ('hubspot', 'person', 0, 4), ('salesforce', 'company', 5, 7), ('stripe', 'customer', 8, 9))
         AS v (slug, entity_type, lo, hi)
JOIN integration_definitions d ON d.slug = v.slug;

-- Ten attributes per entity type, with the provider field each is read from.
CREATE TEMP TABLE bench_attributes ON COMMIT DROP AS
SELECT p.workspace_id, v.entity_type, v.key, v.data_type, v.external_field,
       pg_temp.bench_uuid('bench-attribute:' || p.workspace_id || ':' || v.entity_type || ':' || v.key) AS id
FROM bench_params p,
     (VALUES
        ('person', 'email', 'EMAIL', 'email'),
        ('person', 'first_name', 'TEXT', 'firstname'),
        ('person', 'last_name', 'TEXT', 'lastname'),
        ('person', 'phone', 'PHONE', 'phone'),
        ('person', 'job_title', 'TEXT', 'jobtitle'),
        ('person', 'company', 'TEXT', 'company'),
        ('person', 'city', 'TEXT', 'city'),
        ('person', 'country', 'TEXT', 'country'),
        ('person', 'lifecycle_stage', 'TEXT', 'lifecyclestage'),
        ('person', 'lead_score', 'NUMBER', 'hubspotscore'),
        ('company', 'name', 'TEXT', 'Name'),
        ('company', 'website', 'URL', 'Website'),
        ('company', 'industry', 'TEXT', 'Industry'),
        ('company', 'phone', 'PHONE', 'Phone'),
        ('company', 'city', 'TEXT', 'BillingCity'),
        ('company', 'country', 'TEXT', 'BillingCountry'),
        ('company', 'employees', 'NUMBER', 'NumberOfEmployees'),
        ('company', 'annual_revenue', 'MONEY', 'AnnualRevenue'),
        ('company', 'account_type', 'TEXT', 'Type'),
        ('company', 'owner_email', 'EMAIL', 'Owner.Email'),
        ('customer', 'email', 'EMAIL', 'email'),
        ('customer', 'name', 'TEXT', 'name'),
        ('customer', 'phone', 'PHONE', 'phone'),
        ('customer', 'currency', 'TEXT', 'currency'),
        ('customer', 'balance', 'NUMBER', 'balance'),
        ('customer', 'delinquent', 'BOOLEAN', 'delinquent'),
        ('customer', 'city', 'TEXT', 'address.city'),
        ('customer', 'country', 'TEXT', 'address.country'),
        ('customer', 'customer_since', 'DATETIME', 'created'),
        ('customer', 'description', 'TEXT', 'description')
     ) AS v (entity_type, key, data_type, external_field);

-- A previous run for this workspace goes first (cascades to everything below it).
DELETE FROM workspaces WHERE id = (SELECT workspace_id FROM bench_params);
DELETE FROM users WHERE id = (SELECT pg_temp.bench_uuid('bench-user:' || workspace_id) FROM bench_params);

-- Speed: the per-row foreign-key triggers cost ~2/3 of the bulk insert time. A superuser skips
-- them (session_replication_role = replica: triggers off; CHECK, NOT NULL and UNIQUE still
-- enforced) and every foreign key of the new rows is verified set-based before COMMIT (below).
-- Any other role, or `-v strict_fk=1`, inserts with the triggers on. The cascading delete above
-- ran with them on.
SELECT rolsuper AND NOT :{?strict_fk} AS bench_skip_fk_triggers FROM pg_roles WHERE rolname = current_user \gset
\if :bench_skip_fk_triggers
SET LOCAL session_replication_role = replica;
\endif

INSERT INTO users (id, email, display_name, created_at, updated_at)
SELECT pg_temp.bench_uuid('bench-user:' || workspace_id), 'bench-owner@example.com', 'Bench Owner',
       timestamptz '2025-01-01 00:00:00+00', timestamptz '2025-01-01 00:00:00+00'
FROM bench_params;

INSERT INTO workspaces (id, name, created_at, updated_at)
SELECT workspace_id, 'Bench workspace (' || n || ' entities)',
       timestamptz '2025-01-01 00:00:00+00', timestamptz '2025-01-01 00:00:00+00'
FROM bench_params;

INSERT INTO workspace_members (workspace_id, user_id, role, created_at)
SELECT workspace_id, pg_temp.bench_uuid('bench-user:' || workspace_id), 'OWNER', timestamptz '2025-01-01 00:00:00+00'
FROM bench_params;

INSERT INTO integration_connections (
    id, workspace_id, integration_id, nango_connection_id, status, connection_metadata,
    created_at, updated_at, created_by, updated_by,
    last_connection_validation, connection_status, account_info,
    last_health_check, health_status, last_sync_created, last_sync_at, sync_status, is_active)
SELECT pg_temp.bench_uuid('bench-connection:' || p.workspace_id || ':' || i.slug), p.workspace_id,
       i.integration_id, 'bench-' || i.slug, 'ACTIVE',
       jsonb_build_object('bench', true, 'external_account_id', 'bench-' || i.slug || '-account'),
       timestamptz '2025-01-01 00:00:00+00', timestamptz '2026-01-01 00:00:00+00',
       pg_temp.bench_uuid('bench-user:' || p.workspace_id), pg_temp.bench_uuid('bench-user:' || p.workspace_id),
       timestamptz '2026-01-01 00:00:00+00', 'connected',
       jsonb_build_object('external_account_id', 'bench-' || i.slug || '-account',
                          'display_name', 'Bench ' || i.slug || ' account', 'details', '{}'::jsonb),
       timestamptz '2026-01-01 00:00:00+00', 'HEALTHY',
       0, timestamptz '2026-01-01 00:00:00+00', 'idle', TRUE
FROM bench_params p, bench_integrations i;

INSERT INTO attribute_definitions (id, workspace_id, entity_type, key, label, data_type, created_at, updated_at)
SELECT id, workspace_id, entity_type, key, replace(key, '_', ' '), data_type,
       timestamptz '2025-01-01 00:00:00+00', timestamptz '2025-01-01 00:00:00+00'
FROM bench_attributes;

-- One row per entity: its id, integration and number of user overrides (decided per attribute by
-- a hash: ~5% of the pairs).
CREATE TEMP TABLE bench_entities ON COMMIT DROP AS
SELECT g.i,
       pg_temp.bench_uuid('bench-entity:' || p.workspace_id || ':' || p.seed || ':' || g.i) AS id,
       bi.slug, bi.entity_type, bi.integration_id,
       pg_temp.bench_h('bench-time:' || g.i, p.seed) AS t
FROM bench_params p
CROSS JOIN LATERAL generate_series(0::bigint, p.n - 1) AS g (i)
JOIN bench_integrations bi ON (g.i % 10) BETWEEN bi.lo AND bi.hi;

CREATE TEMP TABLE bench_cells ON COMMIT DROP AS
SELECT e.id AS entity_id, a.id AS attribute_id, a.key, a.external_field, e.integration_id, e.t,
       pg_temp.bench_h('bench-override:' || e.id || ':' || a.key, p.seed) % 100 < 5 AS overridden
FROM bench_params p, bench_entities e
JOIN bench_attributes a ON a.entity_type = e.entity_type;

INSERT INTO entities (
    id, workspace_id, entity_type, display_name, archived_at, created_by, created_at, updated_at,
    source_type, source_integration_id, source_external_id, source_url,
    first_synced_at, last_synced_at, sync_version)
SELECT e.id, p.workspace_id, e.entity_type,
       CASE e.entity_type
           WHEN 'person' THEN (pg_temp.bench_value(e.id, 'first_name', '', p.seed) ->> 0) || ' '
                           || (pg_temp.bench_value(e.id, 'last_name', '', p.seed) ->> 0)
           ELSE pg_temp.bench_value(e.id, 'name', '', p.seed) ->> 0
       END,
       NULL, NULL,
       timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (60 * 86400 + e.t % (300 * 86400))::double precision),
       timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (e.t % (30 * 86400))::double precision),
       'INTEGRATION', e.integration_id,
       CASE e.slug
           WHEN 'hubspot' THEN (1000000 + e.i)::text
           WHEN 'salesforce' THEN '001' || upper(substr(md5('sf' || e.id), 1, 15))
           ELSE 'cus_' || substr(md5('stripe' || e.id), 1, 14)
       END,
       CASE e.slug
           WHEN 'hubspot' THEN 'https://app.hubspot.com/contacts/4242/record/0-1/' || (1000000 + e.i)
           WHEN 'salesforce' THEN 'https://bench.my.salesforce.com/001' || upper(substr(md5('sf' || e.id), 1, 15))
           ELSE 'https://dashboard.stripe.com/customers/cus_' || substr(md5('stripe' || e.id), 1, 14)
       END,
       timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (60 * 86400 + e.t % (300 * 86400))::double precision),
       timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (e.t % (30 * 86400))::double precision),
       1 + o.overrides
FROM bench_params p, bench_entities e
JOIN (SELECT entity_id, count(*) FILTER (WHERE overridden) AS overrides FROM bench_cells GROUP BY entity_id) o
    ON o.entity_id = e.id
ORDER BY e.i;

INSERT INTO entity_attribute_values (entity_id, attribute_id, value, updated_at, workspace_id)
SELECT c.entity_id, c.attribute_id,
       pg_temp.bench_value(c.entity_id, c.key, CASE WHEN c.overridden THEN ':user' ELSE '' END, p.seed),
       timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (c.t % (30 * 86400))::double precision),
       p.workspace_id
FROM bench_params p, bench_cells c
ORDER BY c.entity_id, c.attribute_id;

INSERT INTO entity_attribute_provenance (
    id, entity_id, attribute_id, source_type, source_integration_id, source_external_field,
    last_updated_at, override_by_user, override_at, workspace_id)
SELECT pg_temp.bench_uuid('bench-provenance:' || c.entity_id || ':' || c.attribute_id),
       c.entity_id, c.attribute_id,
       CASE WHEN c.overridden THEN 'USER_OVERRIDE' ELSE 'INTEGRATION' END,
       CASE WHEN c.overridden THEN NULL ELSE c.integration_id END,
       CASE WHEN c.overridden THEN NULL ELSE c.external_field END,
       CASE WHEN c.overridden
            THEN timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (c.t % 86400)::double precision)
            ELSE timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (c.t % (30 * 86400))::double precision)
       END,
       c.overridden,
       CASE WHEN c.overridden
            THEN timestamptz '2026-01-01 00:00:00+00' - make_interval(secs => (c.t % 86400)::double precision)
       END,
       p.workspace_id
FROM bench_params p, bench_cells c
ORDER BY c.entity_id, c.attribute_id;

UPDATE integration_connections ic
SET last_sync_created = (SELECT count(*) FROM bench_entities e WHERE e.integration_id = ic.integration_id)
WHERE ic.workspace_id = (SELECT workspace_id FROM bench_params);

SET LOCAL session_replication_role = origin;

-- Every foreign key of the new rows (what the skipped triggers would have checked).
DO $$
DECLARE
    ws uuid := (SELECT workspace_id FROM bench_params);
    broken bigint;
BEGIN
    SELECT
        (SELECT count(*) FROM workspace_members m
         WHERE m.workspace_id = ws AND (NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = m.workspace_id)
                                     OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)))
      + (SELECT count(*) FROM integration_connections c
         WHERE c.workspace_id = ws AND (NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = c.workspace_id)
                                     OR NOT EXISTS (SELECT 1 FROM integration_definitions d WHERE d.id = c.integration_id)
                                     OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.created_by)
                                     OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.updated_by)))
      + (SELECT count(*) FROM attribute_definitions a
         WHERE a.workspace_id = ws AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = a.workspace_id))
      + (SELECT count(*) FROM entities e
         WHERE e.workspace_id = ws AND (NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = e.workspace_id)
             OR (e.source_integration_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM integration_definitions d WHERE d.id = e.source_integration_id))
             OR (e.created_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = e.created_by))))
      + (SELECT count(*) FROM bench_cells c
         WHERE NOT EXISTS (SELECT 1 FROM entities e WHERE e.id = c.entity_id AND e.workspace_id = ws)
            OR NOT EXISTS (SELECT 1 FROM attribute_definitions a WHERE a.id = c.attribute_id AND a.workspace_id = ws)
            OR NOT EXISTS (SELECT 1 FROM integration_definitions d WHERE d.id = c.integration_id))
    INTO broken;
    IF broken <> 0 THEN
        RAISE EXCEPTION 'generate.sql: % generated rows violate a foreign key', broken;
    END IF;
END
$$;

-- The counts the suite checks before it measures anything.
DO $$
DECLARE
    expected bigint := (SELECT n FROM bench_params);
    ws uuid := (SELECT workspace_id FROM bench_params);
    got_entities bigint;
    got_values bigint;
    got_provenance bigint;
BEGIN
    SELECT count(*) INTO got_entities FROM entities WHERE workspace_id = ws;
    SELECT count(*) INTO got_values FROM entity_attribute_values v JOIN entities e ON e.id = v.entity_id
        WHERE e.workspace_id = ws;
    SELECT count(*) INTO got_provenance FROM entity_attribute_provenance pr JOIN entities e ON e.id = pr.entity_id
        WHERE e.workspace_id = ws;
    IF got_entities <> expected OR got_values <> expected * 10 OR got_provenance <> expected * 10 THEN
        RAISE EXCEPTION 'generate.sql: wrong counts: % entities, % values, % provenance rows (expected %, %, %)',
            got_entities, got_values, got_provenance, expected, expected * 10, expected * 10;
    END IF;
END
$$;

COMMIT;

-- Fresh statistics and visibility map, so the first measured query plans as the later ones do.
VACUUM (ANALYZE) users, workspaces, workspace_members, integration_connections,
    attribute_definitions, entities, entity_attribute_values, entity_attribute_provenance;

\pset format unaligned
\pset tuples_only on
SELECT json_build_object(
    'workspace_id', w.id,
    'owner_user_id', m.user_id,
    'entities', (SELECT count(*) FROM entities e WHERE e.workspace_id = w.id),
    'attribute_values', (SELECT count(*) FROM entity_attribute_values v JOIN entities e ON e.id = v.entity_id
                         WHERE e.workspace_id = w.id),
    'overrides', (SELECT count(*) FROM entity_attribute_provenance pr JOIN entities e ON e.id = pr.entity_id
                  WHERE e.workspace_id = w.id AND pr.override_by_user),
    'by_integration', (SELECT json_object_agg(d.slug, c.last_sync_created ORDER BY d.slug)
                       FROM integration_connections c JOIN integration_definitions d ON d.id = c.integration_id
                       WHERE c.workspace_id = w.id),
    'first_entity_id', (SELECT e.id FROM entities e WHERE e.workspace_id = w.id ORDER BY e.id LIMIT 1))
FROM workspaces w JOIN workspace_members m ON m.workspace_id = w.id AND m.role = 'OWNER'
WHERE w.id = :'workspace_id'::uuid;
