-- "The limit" of issue 6: the entities page of our GraphQL API as ONE hand-written statement that
-- returns the whole page as a single JSON document, the `entities` field of our response:
--
--   entities(workspaceId: $ws, first: 50) {
--     edges { cursor node { id entityType displayName archivedAt updatedAt
--                           source { type externalId url firstSyncedAt lastSyncedAt syncVersion
--                                    integration { slug name } }
--                           attributes { key value
--                                        provenance { sourceType externalField lastUpdatedAt
--                                                     overriddenByUser overrideAt
--                                                     integration { slug name } } } } }
--     pageInfo { hasNextPage endCursor } }
--
-- Same rows and order as apps/server/src/graphql/entities.rs: the workspace's entities by `id`
-- ascending, `first + 1` rows read to tell `hasNextPage`; attributes by key ascending, each with
-- its provenance (LEFT JOIN: absent for values older than provenance) and the catalog entry it
-- names; the cursor is base64url without padding of `entity:<uuid>`.
--
-- pgbench (the variable becomes a bind parameter, so use -M prepared or -M extended):
--   pgbench -n -M prepared -f bench/sql/page.sql -D workspace_id=<uuid> -c 8 -j 2 -T 10 "$DATABASE_URL"
-- psql, to look at the document:
--   psql "$DATABASE_URL" -XAt -v workspace_id="'<uuid>'" -f bench/sql/page.sql
--
-- It runs as whoever connects (the owner, in the suite: row-level security bypassed) and does not
-- repeat the API's membership check. bench/scripts/peers.sh --rls wraps this same statement in
-- BEGIN; SET LOCAL ROLE authenticated; set_config('request.jwt.claim.sub', …); …; COMMIT, as the
-- API runs it.
WITH page AS (
    SELECT e.id, e.entity_type, e.display_name, e.archived_at, e.updated_at, e.source_type,
           e.source_external_id, e.source_url, e.first_synced_at, e.last_synced_at, e.sync_version,
           e.source_integration_id,
           row_number() OVER (ORDER BY e.id) AS n
    FROM entities e
    WHERE e.workspace_id = CAST(:workspace_id AS uuid)
    ORDER BY e.id
    LIMIT 50 + 1
)
SELECT json_build_object(
    'edges', coalesce((
        SELECT json_agg(json_build_object(
            'cursor', rtrim(translate(encode(convert_to('entity:' || p.id::text, 'UTF8'), 'base64'), '+/', '-_'), '='),
            'node', json_build_object(
                'id', p.id,
                'entityType', p.entity_type,
                'displayName', p.display_name,
                'archivedAt', p.archived_at,
                'updatedAt', p.updated_at,
                'source', json_build_object(
                    'type', p.source_type,
                    'externalId', p.source_external_id,
                    'url', p.source_url,
                    'firstSyncedAt', p.first_synced_at,
                    'lastSyncedAt', p.last_synced_at,
                    'syncVersion', p.sync_version,
                    'integration', (SELECT json_build_object('slug', d.slug, 'name', d.name)
                                    FROM integration_definitions d WHERE d.id = p.source_integration_id)),
                'attributes', coalesce((
                    SELECT json_agg(json_build_object(
                        'key', a.key,
                        'value', v.value,
                        'provenance', CASE WHEN pr.id IS NOT NULL THEN json_build_object(
                            'sourceType', pr.source_type,
                            'externalField', pr.source_external_field,
                            'lastUpdatedAt', pr.last_updated_at,
                            'overriddenByUser', pr.override_by_user,
                            'overrideAt', pr.override_at,
                            'integration', CASE WHEN pd.id IS NOT NULL
                                THEN json_build_object('slug', pd.slug, 'name', pd.name) END) END)
                        ORDER BY a.key)
                    FROM entity_attribute_values v
                    JOIN attribute_definitions a ON a.id = v.attribute_id
                    LEFT JOIN entity_attribute_provenance pr
                        ON pr.entity_id = v.entity_id AND pr.attribute_id = v.attribute_id
                    LEFT JOIN integration_definitions pd ON pd.id = pr.source_integration_id
                    WHERE v.entity_id = p.id), '[]'::json)))
            ORDER BY p.id)
        FROM page p WHERE p.n <= 50), '[]'::json),
    'pageInfo', json_build_object(
        'hasNextPage', (SELECT count(*) FROM page) > 50,
        'endCursor', (SELECT rtrim(translate(encode(convert_to('entity:' || p.id::text, 'UTF8'), 'base64'), '+/', '-_'), '=')
                      FROM page p WHERE p.n = least(50, (SELECT count(*) FROM page)))))
AS entities;
