"""The benchmark's task module and its completion log, shared by every system under test."""
