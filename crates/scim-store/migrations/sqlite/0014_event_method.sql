-- The HTTP method of a failed request (what it attempted: "Create User — failed (409)").
ALTER TABLE provisioning_events ADD COLUMN method TEXT;
