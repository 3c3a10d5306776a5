"""Alerts about canaries, for people: the Notifier protocol and its implementations."""
