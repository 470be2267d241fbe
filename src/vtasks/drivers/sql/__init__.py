"""The Django-ORM driver: SQLite and MySQL/MariaDB (and PostgreSQL without psycopg_pool)."""

from vtasks.drivers.sql.driver import SqlDriver

__all__ = ["SqlDriver"]
