"""The PostgreSQL driver: psycopg 3's async pool, batch claims with SKIP LOCKED, LISTEN/NOTIFY wake-ups."""

from vtasks.drivers.postgres.driver import PostgresDriver

__all__ = ["PostgresDriver"]
