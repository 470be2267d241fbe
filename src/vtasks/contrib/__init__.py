"""L4: integrations with third-party tools, each imported only when a project configures it."""
