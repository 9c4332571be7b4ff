-- An admin write sets keymesh.commit_by (epoch milliseconds in this server's clock) for its transaction, and every
-- admin write inserts an audit event. Checked at COMMIT, this refuses a commit processed after the deadline, so a
-- call already answered "unavailable" is not applied when a hung server resumes with its COMMIT queued.
create function keymesh_commit_deadline() returns trigger language plpgsql as $$
declare
  commit_by text := current_setting('keymesh.commit_by', true);
begin
  if commit_by <> '' and extract(epoch from clock_timestamp())::float8 * 1000 > commit_by::float8 then
    raise exception 'the admin call''s deadline passed before its commit' using errcode = 'KM001';
  end if;
  return null;
end;
$$;

create constraint trigger audit_events_commit_deadline after insert on audit_events
  deferrable initially deferred for each row execute function keymesh_commit_deadline();
