-- Keyset (cursor) paging and the default order walk (tenant, kind) in seq order.
CREATE INDEX resources_tenant_kind ON resources(tenant_id, kind, seq)
