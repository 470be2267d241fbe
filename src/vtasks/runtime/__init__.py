"""L3: the processes that run tasks. Receives an executor and a driver; imports no Django backend."""
