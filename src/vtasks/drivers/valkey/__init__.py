"""The Valkey driver (it also speaks to Redis 7): ``driver.ValkeyDriver``; key names in ``keys.py``.

Nothing is imported here, so the web process can use the key names and scripts without loading
the worker's driver.
"""
