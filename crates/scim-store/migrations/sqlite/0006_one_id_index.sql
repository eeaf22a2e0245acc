-- Resource ids are server-made UUIDs: one unique (tenant, id) index serves lookups by id with
-- or without the kind, and every create writes one random index page fewer.
DROP INDEX resources_id;
DROP INDEX resources_any_kind_id;
CREATE UNIQUE INDEX resources_tenant_id ON resources(tenant_id, id)
