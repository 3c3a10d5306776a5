"""Metric analysis for progressive delivery, usable without the controller.

``analysis.providers`` queries metric back ends; it depends on nothing in ``canary``.
"""
