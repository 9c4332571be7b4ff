-- Requests queued for a human (approval-level scopes) and the durable outbox of webhooks.

create table approvals (
  id text primary key,
  key_id text not null,
  workspace_id text not null references workspaces (id),
  key_space_id text not null references key_spaces (id),
  method text not null,
  path text not null,
  body_digest bytea not null,
  body bytea,
  headers jsonb not null default '{}',
  required_scope text not null,
  status text not null default 'pending' check (status in ('pending', 'approved', 'rejected', 'used')),
  reason text not null default '',
  decided_by text not null default '',
  decided_at timestamptz,
  used_at timestamptz,
  expires_at timestamptz not null,
  created_at timestamptz not null default date_trunc('milliseconds', now())
);
create index approvals_workspace on approvals (workspace_id, status, created_at, id);

create table webhook_outbox (
  id bigserial primary key,
  url text not null,
  event text not null,
  payload jsonb not null,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  failed_at timestamptz,
  last_error text not null default '',
  created_at timestamptz not null default now()
);
create index webhook_outbox_due on webhook_outbox (next_attempt_at) where delivered_at is null and failed_at is null;
