-- The git source: what a build was asked for (a branch, tag or commit) and the commit's
-- author; deployments whose servers get no secret env vars (previews of pull requests
-- from forks); the webhook deliveries already acted on, so that a replay is refused;
-- and lookups of the projects of one repository (ProjectStore.find_by_source).

ALTER TABLE admin_builds
  ADD COLUMN ref text,
  ADD COLUMN commit_author text;

ALTER TABLE admin_deployments
  ADD COLUMN secrets_withheld boolean NOT NULL DEFAULT false;

-- Not announced on mastra_admin_changes (see 0003): nothing caches it, and every
-- webhook writes to it.
CREATE TABLE admin_webhook_deliveries (
  source      text NOT NULL,
  delivery_id text NOT NULL,
  received_at timestamptz NOT NULL,
  CONSTRAINT admin_webhook_deliveries_pkey PRIMARY KEY (source, delivery_id)
);
CREATE INDEX admin_webhook_deliveries_received_idx ON admin_webhook_deliveries (received_at);

-- find_by_source's keys: a source's repository key, and the id every source sets
CREATE INDEX admin_projects_repository_key_idx
  ON admin_projects (source_type, (source_config ->> 'repository_key'));
CREATE INDEX admin_projects_source_id_idx
  ON admin_projects (source_type, (source_config ->> 'source_id'));
