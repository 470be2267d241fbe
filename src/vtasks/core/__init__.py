"""L0: pure building blocks with no Django, no I/O."""
