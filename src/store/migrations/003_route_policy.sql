-- What a key space with route rules does with a path no rule matches, and whether paths compare ignoring case.
-- Key spaces that exist now keep allowing unmatched paths, the behaviour they were set up with; a key space
-- created from now on refuses them unless it says otherwise.
alter table key_spaces
  add column unmatched_routes text not null default 'allow' check (unmatched_routes in ('allow', 'deny')),
  add column case_insensitive_routes boolean not null default false;
alter table key_spaces alter column unmatched_routes set default 'deny';
