"""L2: storage drivers. Each one implements ``vtasks.drivers.base.Driver``; none imports another."""
