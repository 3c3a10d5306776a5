"""The side-by-side benchmark of our controller and Flagger on one local stack (``make bench-flagger``).

``__main__`` parses the options and runs one size after another (``run.py``), each on a stack of its
own; ``binary.py`` builds Flagger; ``fleet.py`` makes the canaries both controllers get;
``audit.py``, ``procstat.py`` and ``lag.py`` turn the audit log, /proc and our /metrics into figures;
``report.py`` prints the tables and writes docs/benchmarks.md with its plot.
"""
