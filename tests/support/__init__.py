"""Helpers shared by tests: real servers on loopback, and their pytest fixtures."""
