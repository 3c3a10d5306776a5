"""Alerts about canaries, for people.

The engine hands a ``Notice`` to a ``Notifier`` (base.py) and goes on. ``AlertDispatcher``
(dispatch.py) routes it to the AlertProviders named in ``spec.analysis.alerts``, builds each
service's payload (one module per service: slack.py, msteams.py, discord.py, rocket.py, gchat.py,
generic.py; registry.py maps ``spec.type`` to them) and posts it from a thread of its own.
"""
