"""The orchestrating half of the benchmark: no Django here; ``client.py`` does the in-Django work."""
