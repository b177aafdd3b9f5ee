-- Custom domains (the first migration of the custom domains' block, 600-699): host
-- names of deployments, unique in the installation whatever their case, gone with
-- their deployment (and so with its project and team).

CREATE TABLE admin_domains (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id            uuid NOT NULL CONSTRAINT admin_domains_team_id_fkey
                     REFERENCES admin_teams (id) ON DELETE CASCADE,
  project_id         uuid NOT NULL CONSTRAINT admin_domains_project_id_fkey
                     REFERENCES admin_projects (id) ON DELETE CASCADE,
  deployment_id      uuid NOT NULL CONSTRAINT admin_domains_deployment_id_fkey
                     REFERENCES admin_deployments (id) ON DELETE CASCADE,
  hostname           varchar(253) NOT NULL,
  verification_token text NOT NULL,
  status             varchar(20) NOT NULL DEFAULT 'pending'
                     CONSTRAINT admin_domains_status_check
                     CHECK (status IN ('pending', 'verified', 'failed')),
  verified_at        timestamptz,
  last_checked_at    timestamptz,
  last_error         text,
  created_by         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admin_domains_hostname_key ON admin_domains (lower(hostname));
CREATE INDEX admin_domains_deployment_idx ON admin_domains (deployment_id, hostname);
CREATE INDEX admin_domains_project_idx ON admin_domains (project_id, hostname);
-- The verified ones (what the router serves) and the pending ones (checked again
-- periodically) are looked up by status.
CREATE INDEX admin_domains_status_idx ON admin_domains (status, hostname);

CREATE TRIGGER admin_domains_updated_at BEFORE UPDATE ON admin_domains
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();

-- Not announced on mastra_admin_changes (see 0003): a domain's view carries the
-- router's certificate state, which no table holds, so nothing above the storage may
-- cache it, and checks of pending domains write to it periodically.
