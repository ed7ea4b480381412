"""Where everything persists: PostgreSQL connections (external or embedded), the tables, schema upgrades, pool and timeouts, and the durable job queue."""
