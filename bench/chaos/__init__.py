"""The chaos bench (``make chaos``, not part of the test suite): the controller killed at random points
of good and bad releases on two routers, kube-apiserver and etcd restarted mid-release, Prometheus
stopped, killed and hung, hung webhook and chat receivers beside a healthy canary, and a used-up
ResourceQuota, each on a local stack of its own; prints a table of outcomes and lost alerts.

``__main__`` runs it; ``lab`` holds the stack, controllers and checks; ``kills`` and ``faults`` the
scenarios; ``report`` the table. docs/reliability.md explains the scenarios and keeps the latest table.
"""
