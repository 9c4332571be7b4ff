-- keymesh schema: key spaces, workspaces, members, keys, usage and an append-only audit log.

create table key_spaces (
  id text primary key,
  name text not null unique,
  settings jsonb not null,
  system boolean not null default false,
  created_at timestamptz not null default date_trunc('milliseconds', now()),
  updated_at timestamptz not null default now()
);

create table workspaces (
  id text primary key,
  name text not null,
  key_segment text not null unique,
  status text not null default 'active' check (status in ('active', 'disabled')),
  api_access boolean not null default true,
  plan text not null default '',
  key_limits jsonb,
  workspace_limits jsonb,
  max_key_age_days integer not null default 0 check (max_key_age_days >= 0),
  owner_member_id text,
  system boolean not null default false,
  created_at timestamptz not null default date_trunc('milliseconds', now()),
  updated_at timestamptz not null default now()
);

create table members (
  id text primary key,
  workspace_id text not null references workspaces (id),
  name text not null,
  role text not null,
  status text not null default 'active' check (status in ('active', 'closed')),
  created_at timestamptz not null default date_trunc('milliseconds', now()),
  updated_at timestamptz not null default now()
);
create index members_workspace on members (workspace_id);

create table keys (
  id text primary key,
  key_space_id text not null references key_spaces (id),
  workspace_id text not null references workspaces (id),
  owner_type text not null check (owner_type in ('user', 'organization')),
  owner_member_id text references members (id),
  name text not null,
  display text not null,
  -- HMAC-SHA-256 of the key under the server pepper; the plaintext is never stored.
  digest bytea not null unique,
  scopes text[] not null default '{}',
  metadata jsonb not null default '{}',
  limits jsonb,
  rejection_webhook_url text not null default '',
  expires_at timestamptz,
  revoked_at timestamptz,
  rotated_from_id text,
  rotated_to_id text,
  last_used_at timestamptz,
  created_by text not null default '',
  created_at timestamptz not null default date_trunc('milliseconds', now()),
  updated_at timestamptz not null default now()
);
create index keys_workspace on keys (workspace_id, key_space_id, created_at, id);
create index keys_owner on keys (owner_member_id);

-- Replays of an idempotent create: the response secret is kept only AES-GCM sealed, for a day.
create table idempotency (
  workspace_id text not null,
  idempotency_key text not null,
  fingerprint bytea not null,
  key_id text not null,
  sealed_secret bytea,
  created_at timestamptz not null default date_trunc('milliseconds', now()),
  primary key (workspace_id, idempotency_key)
);

create table key_usage (
  key_id text not null,
  day date not null,
  requests bigint not null default 0,
  primary key (key_id, day)
);

create table audit_events (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  target_type text not null,
  target_id text not null,
  before jsonb,
  after jsonb
);
create index audit_events_target on audit_events (target_id, id);

-- The audit log is append-only: updates and deletes are refused by the database itself.
create function audit_events_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_events is append-only';
end;
$$;
create trigger audit_events_no_update before update or delete on audit_events
  for each row execute function audit_events_append_only();

-- Root keys that guard KeyAdmin live in a system key space and workspace.
insert into key_spaces (id, name, system, settings) values (
  'ks_keymesh_root', 'keymesh-root', true,
  '{"format":{"prefix":"km_root_","workspaceSegment":false,"style":"single","secretBytes":24,"idPrefix":""},
    "credentialSources":[{"kind":"bearer"}],
    "scopeModel":{"scopes":[],"hierarchies":[["admin:read","admin:write","admin:root"]],"ladders":[],"fullAccessScope":""},
    "defaultKeyLimits":[],"defaultWorkspaceLimits":[],
    "quotas":{"maxKeysPerWorkspace":0,"maxUserKeysPerMember":0,"maxOrganizationKeysPerWorkspace":0},
    "rotationGraceSeconds":0,"maxKeyAgeDays":0,"routes":[],"creatorRoles":[],"forwardCredential":false,
    "keyAgeWarningDays":7,"defaultScopes":[]}'
);
insert into workspaces (id, name, key_segment, system) values ('ws_keymesh', 'keymesh operators', 'keymesh', true);
