-- The service role: what keymesh needs at run time and nothing more. Migrations run as the schema's owner; the
-- service connects as keymesh_service (or as a login role granted it), which owns nothing, so it can neither alter
-- a table nor disable a trigger, and it may only append to and read the audit log.
do $$
begin
  if not exists (select from pg_roles where rolname = 'keymesh_service') then
    begin
      create role keymesh_service nologin;
    exception
      -- Another database on the same server created it concurrently.
      when duplicate_object or unique_violation then null;
      when insufficient_privilege then
        raise warning 'keymesh: this role may not create roles, so keymesh_service does not exist and nothing was granted to it; create it and run the grants in docs/security.md';
        return;
    end;
  end if;
  execute format('grant usage on schema %I to keymesh_service', current_schema());
  grant select, insert, update on key_spaces, workspaces, members, approvals, webhook_outbox to keymesh_service;
  grant select, insert, update, delete on keys, key_usage to keymesh_service;
  grant select, insert, delete on idempotency to keymesh_service;
  grant select, insert on audit_events to keymesh_service;
  revoke update, delete, truncate, references, trigger on audit_events from keymesh_service;
  grant usage on sequence audit_events_id_seq, webhook_outbox_id_seq to keymesh_service;
  -- To see that nothing is pending when it starts without the owner's credentials.
  grant select on schema_migrations to keymesh_service;
end
$$;
