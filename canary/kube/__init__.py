"""The only package that imports ``kubernetes``: clients, apply, and (later) watch caches.

Objects cross this boundary as plain dicts, never as the generated client classes.
"""
