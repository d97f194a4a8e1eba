"""Running the system: the local runner (`python -m deploy`), gunicorn and nginx settings,
the Dockerfile and the Kubernetes manifests."""
