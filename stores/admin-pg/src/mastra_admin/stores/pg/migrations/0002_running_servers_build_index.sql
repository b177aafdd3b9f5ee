-- Deleting builds (with their deployment) checks admin_running_servers.build_id for
-- every build removed: index it so that the check is a lookup, not a table scan.
CREATE INDEX admin_running_servers_build_idx ON admin_running_servers (build_id);
