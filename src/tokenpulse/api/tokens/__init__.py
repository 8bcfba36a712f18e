"""Token metrics over HTTP: the answers of the token endpoints and their routes."""
