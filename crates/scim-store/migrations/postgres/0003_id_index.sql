CREATE INDEX resources_any_kind_id ON resources(tenant_id, id)
