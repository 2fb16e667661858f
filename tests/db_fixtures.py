"""Database fixtures (SQLite always; PostgreSQL when BRIDGEKIT_TEST_POSTGRES_URL is set)."""
