"""PostgreSQL storage: connection, migrations, and the SQL of each part of the service."""
