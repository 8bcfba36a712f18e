"""Storage adapters over Redis and SQL: latest-value cache, history, rate limiter, leader lock."""
