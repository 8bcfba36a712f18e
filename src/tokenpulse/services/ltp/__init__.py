"""Last traded prices: the price service that serves them and the supervisor of their sources."""
