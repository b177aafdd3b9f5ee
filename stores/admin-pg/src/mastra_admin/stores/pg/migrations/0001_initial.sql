-- The admin schema: users, teams, projects, deployments, builds (and the queue),
-- running servers, routes and RBAC. Runs with search_path set to the target schema.
-- Constraint names matter: the adapter maps them to the field a conflict names.

CREATE FUNCTION admin_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$;

-- users -------------------------------------------------------------------------

CREATE TABLE admin_users (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  external_id varchar(255) CONSTRAINT admin_users_external_id_key UNIQUE,
  email       varchar(255) NOT NULL,
  name        varchar(255),
  avatar_url  text,
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
-- email is unique whatever its case
CREATE UNIQUE INDEX admin_users_email_key ON admin_users (lower(email));
CREATE INDEX admin_users_created_idx ON admin_users (created_at, id);

CREATE TABLE admin_user_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL CONSTRAINT admin_user_tokens_user_id_fkey
               REFERENCES admin_users (id) ON DELETE CASCADE,
  name         varchar(255) NOT NULL,
  token_hash   varchar(255) NOT NULL CONSTRAINT admin_user_tokens_token_hash_key UNIQUE,
  token_prefix varchar(32) NOT NULL,
  scopes       jsonb NOT NULL DEFAULT '[]',
  expires_at   timestamptz,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_user_tokens_user_idx ON admin_user_tokens (user_id, created_at DESC);

-- teams -------------------------------------------------------------------------

CREATE TABLE admin_teams (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       varchar(255) NOT NULL,
  slug       varchar(255) NOT NULL CONSTRAINT admin_teams_slug_key UNIQUE,
  settings   jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_teams_name_idx ON admin_teams (name, id);

CREATE TABLE admin_team_members (
  id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id   uuid NOT NULL CONSTRAINT admin_team_members_team_id_fkey
            REFERENCES admin_teams (id) ON DELETE CASCADE,
  user_id   uuid NOT NULL CONSTRAINT admin_team_members_user_id_fkey
            REFERENCES admin_users (id) ON DELETE CASCADE,
  role      varchar(50) NOT NULL DEFAULT 'member',
  joined_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT admin_team_members_team_user_key UNIQUE (team_id, user_id)
);
CREATE INDEX admin_team_members_user_idx ON admin_team_members (user_id);

-- invited_by is an audit field: the invite outlives the user who sent it
CREATE TABLE admin_team_invites (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id     uuid NOT NULL CONSTRAINT admin_team_invites_team_id_fkey
              REFERENCES admin_teams (id) ON DELETE CASCADE,
  email       varchar(255) NOT NULL,
  role        varchar(50) NOT NULL DEFAULT 'member',
  invited_by  uuid NOT NULL,
  token_hash  varchar(255) NOT NULL CONSTRAINT admin_team_invites_token_hash_key UNIQUE,
  expires_at  timestamptz NOT NULL,
  accepted_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_team_invites_team_idx ON admin_team_invites (team_id, created_at DESC);
CREATE INDEX admin_team_invites_email_idx ON admin_team_invites (lower(email));

CREATE TABLE admin_team_installations (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id         uuid NOT NULL CONSTRAINT admin_team_installations_team_id_fkey
                  REFERENCES admin_teams (id) ON DELETE CASCADE,
  provider        varchar(50) NOT NULL,
  installation_id varchar(255) NOT NULL,
  account_name    varchar(255),
  account_type    varchar(50),
  permissions     jsonb NOT NULL DEFAULT '{}',
  metadata        jsonb NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT admin_team_installations_installation_key UNIQUE (team_id, provider, installation_id)
);
CREATE INDEX admin_team_installations_provider_idx
  ON admin_team_installations (provider, installation_id);

-- projects ----------------------------------------------------------------------

CREATE TABLE admin_projects (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id        uuid NOT NULL CONSTRAINT admin_projects_team_id_fkey
                 REFERENCES admin_teams (id) ON DELETE CASCADE,
  name           varchar(255) NOT NULL,
  slug           varchar(255) NOT NULL,
  source_type    varchar(50) NOT NULL,
  source_config  jsonb NOT NULL DEFAULT '{}',
  default_branch varchar(255) NOT NULL DEFAULT 'main',
  settings       jsonb NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT admin_projects_team_slug_key UNIQUE (team_id, slug)
);
CREATE INDEX admin_projects_team_name_idx ON admin_projects (team_id, name, id);

CREATE TABLE admin_project_env_vars (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id      uuid NOT NULL CONSTRAINT admin_project_env_vars_project_id_fkey
                  REFERENCES admin_projects (id) ON DELETE CASCADE,
  deployment_type varchar(50),
  key             varchar(255) NOT NULL,
  encrypted_value text NOT NULL,
  is_secret       boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- a NULL deployment type (every type) is a key of its own
  CONSTRAINT admin_project_env_vars_key_key
    UNIQUE NULLS NOT DISTINCT (project_id, deployment_type, key)
);

-- created_by is an audit field: the token outlives the user who made it
CREATE TABLE admin_project_api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id   uuid NOT NULL CONSTRAINT admin_project_api_tokens_project_id_fkey
               REFERENCES admin_projects (id) ON DELETE CASCADE,
  name         varchar(255) NOT NULL,
  token_hash   varchar(255) NOT NULL CONSTRAINT admin_project_api_tokens_token_hash_key UNIQUE,
  token_prefix varchar(32) NOT NULL,
  scopes       jsonb NOT NULL DEFAULT '[]',
  last_used_at timestamptz,
  expires_at   timestamptz,
  created_by   uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_project_api_tokens_project_idx
  ON admin_project_api_tokens (project_id, created_at DESC);

-- deployments and builds --------------------------------------------------------

CREATE TABLE admin_deployments (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id        uuid NOT NULL CONSTRAINT admin_deployments_project_id_fkey
                    REFERENCES admin_projects (id) ON DELETE CASCADE,
  type              varchar(50) NOT NULL,
  branch            varchar(255) NOT NULL,
  slug              varchar(255) NOT NULL,
  status            varchar(50) NOT NULL DEFAULT 'pending',
  current_build_id  uuid,
  public_url        text,
  internal_host     varchar(255),
  internal_port     integer,
  env_var_overrides jsonb NOT NULL DEFAULT '[]',
  auto_shutdown     boolean NOT NULL DEFAULT false,
  expires_at        timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT admin_deployments_branch_key UNIQUE (project_id, type, branch)
);
CREATE INDEX admin_deployments_project_idx ON admin_deployments (project_id, created_at DESC);
CREATE INDEX admin_deployments_status_idx ON admin_deployments (status);
CREATE INDEX admin_deployments_preview_expiry_idx ON admin_deployments (expires_at)
  WHERE type = 'preview';

CREATE TABLE admin_builds (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  deployment_id     uuid NOT NULL CONSTRAINT admin_builds_deployment_id_fkey
                    REFERENCES admin_deployments (id) ON DELETE CASCADE,
  trigger           varchar(50) NOT NULL,
  triggered_by      varchar(255) NOT NULL,
  commit_sha        varchar(255),
  commit_message    text,
  status            varchar(50) NOT NULL DEFAULT 'queued',
  artifact_build_id uuid,
  log_path          text,
  error_message     text,
  worker_id         varchar(255),
  lease_expires_at  timestamptz,
  queued_at         timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  completed_at      timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_builds_deployment_idx ON admin_builds (deployment_id, queued_at DESC, id DESC);
CREATE INDEX admin_builds_status_idx ON admin_builds (status, queued_at, id);
-- the queue, in FIFO order
CREATE INDEX admin_builds_queue_idx ON admin_builds (queued_at, id) WHERE status = 'queued';
-- builds held by a worker, per deployment (dequeue skips busy deployments)
CREATE INDEX admin_builds_active_idx ON admin_builds (deployment_id)
  WHERE status IN ('building', 'deploying');

-- running servers and routes ----------------------------------------------------

CREATE TABLE admin_running_servers (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  deployment_id      uuid NOT NULL CONSTRAINT admin_running_servers_deployment_id_fkey
                     REFERENCES admin_deployments (id) ON DELETE CASCADE,
  build_id           uuid NOT NULL CONSTRAINT admin_running_servers_build_id_fkey
                     REFERENCES admin_builds (id) ON DELETE CASCADE,
  process_id         integer,
  process_started_at double precision,
  container_id       varchar(255),
  host               varchar(255) NOT NULL,
  port               integer NOT NULL,
  health_status      varchar(50) NOT NULL DEFAULT 'starting',
  last_health_check  timestamptz,
  memory_usage_mb    double precision,
  cpu_percent        double precision,
  metadata           jsonb NOT NULL DEFAULT '{}',
  started_at         timestamptz NOT NULL DEFAULT now(),
  stopped_at         timestamptz
);
CREATE INDEX admin_running_servers_deployment_idx
  ON admin_running_servers (deployment_id, started_at DESC);
CREATE INDEX admin_running_servers_health_idx ON admin_running_servers (health_status);
CREATE INDEX admin_running_servers_active_idx ON admin_running_servers (started_at DESC)
  WHERE stopped_at IS NULL;
CREATE INDEX admin_running_servers_stopped_idx ON admin_running_servers (stopped_at)
  WHERE stopped_at IS NOT NULL;

CREATE TABLE admin_routes (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  deployment_id     uuid NOT NULL CONSTRAINT admin_routes_deployment_id_fkey
                    REFERENCES admin_deployments (id) ON DELETE CASCADE,
  project_id        uuid NOT NULL CONSTRAINT admin_routes_project_id_fkey
                    REFERENCES admin_projects (id) ON DELETE CASCADE,
  subdomain         varchar(255) NOT NULL CONSTRAINT admin_routes_subdomain_key UNIQUE,
  target_host       varchar(255) NOT NULL,
  target_port       integer NOT NULL,
  public_url        text NOT NULL,
  status            varchar(50) NOT NULL DEFAULT 'pending',
  tls_enabled       boolean NOT NULL DEFAULT false,
  provider_route_id varchar(255),
  metadata          jsonb NOT NULL DEFAULT '{}',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  last_health_check timestamptz,
  -- one public route per deployment
  CONSTRAINT admin_routes_deployment_key UNIQUE (deployment_id)
);
CREATE INDEX admin_routes_project_idx ON admin_routes (project_id);
CREATE INDEX admin_routes_status_idx ON admin_routes (status);

-- RBAC --------------------------------------------------------------------------

CREATE TABLE admin_roles (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id     uuid CONSTRAINT admin_roles_team_id_fkey
              REFERENCES admin_teams (id) ON DELETE CASCADE,
  name        varchar(255) NOT NULL,
  description text,
  permissions jsonb NOT NULL DEFAULT '[]',
  is_system   boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  -- system roles have no team, and their names are unique too
  CONSTRAINT admin_roles_name_key UNIQUE NULLS NOT DISTINCT (team_id, name)
);

CREATE TABLE admin_role_assignments (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  role_id       uuid NOT NULL CONSTRAINT admin_role_assignments_role_id_fkey
                REFERENCES admin_roles (id) ON DELETE CASCADE,
  user_id       uuid NOT NULL CONSTRAINT admin_role_assignments_user_id_fkey
                REFERENCES admin_users (id) ON DELETE CASCADE,
  resource_type varchar(50),
  resource_id   uuid,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT admin_role_assignments_key
    UNIQUE NULLS NOT DISTINCT (role_id, user_id, resource_type, resource_id)
);
CREATE INDEX admin_role_assignments_user_idx ON admin_role_assignments (user_id, created_at);
CREATE INDEX admin_role_assignments_resource_idx
  ON admin_role_assignments (resource_type, resource_id);

-- updated_at triggers -----------------------------------------------------------

CREATE TRIGGER admin_users_updated_at BEFORE UPDATE ON admin_users
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_teams_updated_at BEFORE UPDATE ON admin_teams
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_team_installations_updated_at BEFORE UPDATE ON admin_team_installations
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_projects_updated_at BEFORE UPDATE ON admin_projects
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_project_env_vars_updated_at BEFORE UPDATE ON admin_project_env_vars
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_deployments_updated_at BEFORE UPDATE ON admin_deployments
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_routes_updated_at BEFORE UPDATE ON admin_routes
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();
CREATE TRIGGER admin_roles_updated_at BEFORE UPDATE ON admin_roles
  FOR EACH ROW EXECUTE FUNCTION admin_set_updated_at();

-- the build queue -----------------------------------------------------------------

-- Take the oldest queued build that may run now and mark it building for the worker.
-- A build may run when its deployment has no active build and no older queued one.
--
-- Candidates come one at a time in FIFO order with FOR UPDATE SKIP LOCKED (a row
-- another dequeuer is looking at is passed over). For each, a transaction advisory
-- lock on its deployment (try, never wait) makes the deployment checks safe against
-- concurrent dequeuers; those checks are separate statements, and each statement of
-- a volatile plpgsql function takes a fresh snapshot, so they see every dequeue
-- committed before the lock was granted. Deployments are independent, so workers
-- only ever wait for each other on the same deployment. With p_max_active the whole
-- dequeue is serialised by one lock per schema, as the count is across all rows.
--
-- The commit does not wait for its WAL flush (synchronous_commit off for this
-- transaction only): the hand-out is visible to others at once, and only a crash of
-- the server itself within milliseconds of the commit could lose it; the build is
-- then queued again, the worker that had it lost its connection in that crash, and
-- its next renew_lease (which checks the worker id) fails.
CREATE FUNCTION admin_dequeue_build(
  p_worker_id text, p_lease_until timestamptz, p_started_at timestamptz, p_max_active integer
) RETURNS SETOF admin_builds
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
  v_id uuid := '00000000-0000-0000-0000-000000000000';
  v_queued_at timestamptz := '-infinity';
  v_deployment uuid;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  IF p_max_active IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(
      hashtextextended('mastra_admin.build_queue.' || current_schema(), 0));
    IF (SELECT count(*) FROM admin_builds WHERE status IN ('building', 'deploying'))
       >= p_max_active THEN
      RETURN;
    END IF;
  END IF;
  LOOP
    SELECT b.id, b.queued_at, b.deployment_id INTO v_id, v_queued_at, v_deployment
      FROM admin_builds b
     WHERE b.status = 'queued' AND (b.queued_at, b.id) > (v_queued_at, v_id)
     ORDER BY b.queued_at, b.id
     LIMIT 1
       FOR UPDATE OF b SKIP LOCKED;
    IF NOT FOUND THEN
      RETURN;
    END IF;
    IF pg_try_advisory_xact_lock(hashtextextended(
         'mastra_admin.deployment.' || current_schema() || '.' || v_deployment::text, 0)) THEN
      IF NOT EXISTS (
           SELECT 1 FROM admin_builds a
            WHERE a.deployment_id = v_deployment AND a.status IN ('building', 'deploying'))
         AND NOT EXISTS (
           SELECT 1 FROM admin_builds q
            WHERE q.deployment_id = v_deployment AND q.status = 'queued'
              AND (q.queued_at, q.id) < (v_queued_at, v_id)) THEN
        RETURN QUERY
          UPDATE admin_builds
             SET status = 'building', started_at = p_started_at, worker_id = p_worker_id,
                 lease_expires_at = p_lease_until
           WHERE id = v_id
          RETURNING *;
        RETURN;
      END IF;
    END IF;
  END LOOP;
END;
$$;
