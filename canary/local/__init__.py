"""The local stack: upstream Kubernetes control plane, kwok nodes and Prometheus on loopback.

``canary local up|down|status`` and the pytest harness both drive ``canary.local.stack``; the
other modules are its parts (binaries, PKI, processes, Prometheus and kwok configuration).
"""
