"""L4: Django task backends. The only place Django ``TaskResult``s are built."""
