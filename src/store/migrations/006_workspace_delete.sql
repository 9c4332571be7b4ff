-- DeleteWorkspace removes a workspace with its members and approvals, so the service role may delete those rows
-- too. The audit log stays append-only. Without the role (see 004_roles.sql), there is nothing to grant.
do $$
begin
  if exists (select from pg_roles where rolname = 'keymesh_service') then
    grant delete on workspaces, members, approvals to keymesh_service;
  end if;
end
$$;
