"""L1: how task data is encoded for storage."""
