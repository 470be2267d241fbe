"""One Django project per system under test: ``systems/<name>/settings.py`` and ``adapter.py``."""
