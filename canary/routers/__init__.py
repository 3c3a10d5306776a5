"""Traffic routers: how a canary's share of requests is set (Services, Gateway API, ...)."""
