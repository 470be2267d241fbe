"""The PostgreSQL driver: psycopg 3 async pool, SKIP LOCKED batch claims, LISTEN/NOTIFY wake-ups."""

from vtasks.drivers.postgres.driver import PostgresDriver

__all__ = ["PostgresDriver"]
