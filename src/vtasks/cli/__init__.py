"""L5: the ``vtasks`` command."""
