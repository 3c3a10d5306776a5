"""What the controller exports about itself: Prometheus metrics and health endpoints."""
