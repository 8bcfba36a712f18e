"""Last traded prices over HTTP: the answers of the LTP endpoints and their routes."""
