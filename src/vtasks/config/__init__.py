"""L1: configuration. ``models`` (the pydantic topology), ``sources`` (one function per layer),
``loader`` (merge and validate once), ``messages`` (errors in vtasks' words), ``explain``
(``vtasks check``), ``env`` (every variable name)."""
