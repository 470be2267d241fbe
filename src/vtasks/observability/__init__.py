"""L2: logs (and later metrics and health) for every vtasks process."""
