"""Compatibility layers for moving existing code onto vtasks (``vtasks.compat.celery``)."""
