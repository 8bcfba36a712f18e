"""HTTP API: the app factory, the fast edge, routes by area, access control, error mapping."""
