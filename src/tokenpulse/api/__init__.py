"""HTTP API: app factory, routes, access control, error mapping."""
