"""L1: configuration. The layered loader and the YAML topology come with the supervisor."""
