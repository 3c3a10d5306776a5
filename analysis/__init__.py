"""Metric analysis for progressive delivery, usable without the controller.

``providers`` query metric back ends; ``templates`` renders MetricTemplate queries with escaped
values; ``builtin`` holds Flagger's built-in queries as data; ``gates`` judges a value against
its range. Nothing here imports ``canary``.
"""
