-- Every committed change to a table that readers cache is announced on the channel
-- mastra_admin_changes as "<schema>.<table>", so that every process drops what it
-- cached from that table. One notification per statement (and PostgreSQL folds
-- repeats within a transaction); cascaded deletes fire the triggers of the tables
-- they reach. The busy tables of the build machinery (builds, running servers,
-- routes) are not announced: nothing caches them.
CREATE FUNCTION admin_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mastra_admin_changes', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END;
$$;

DO $$
DECLARE
  watched text;
BEGIN
  FOREACH watched IN ARRAY ARRAY[
    'admin_users', 'admin_user_tokens', 'admin_teams', 'admin_team_members',
    'admin_team_invites', 'admin_team_installations', 'admin_projects',
    'admin_project_env_vars', 'admin_project_api_tokens', 'admin_deployments',
    'admin_roles', 'admin_role_assignments'
  ] LOOP
    EXECUTE format(
      'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I'
      ' FOR EACH STATEMENT EXECUTE FUNCTION admin_notify_change()',
      watched || '_notify_change', watched
    );
  END LOOP;
END;
$$;
