"""The HTTP edge every service shares, one module per job:

- `app`: the app factory's skeleton (flask-smorest, request ids, request metrics)
- `problems`: problem+json, the one error envelope
- `bearer`: access-token authentication
- `probes`: healthz, readyz, metrics
- `context`: the service's wiring and a unit of work per use case
- `blueprint`: flask-smorest's Blueprint, with argument schemas made once
- `openapi`: what the documents say beyond flask-smorest's defaults; documents of their own
"""

from shared.http.app import create_service_app
from shared.http.bearer import authenticated, current_user_id, revoked_here
from shared.http.blueprint import Blueprint
from shared.http.context import ServiceContext, service, unit_of_work
from shared.http.openapi import Document
from shared.http.problems import PROBLEM, problem

__all__ = [
    "PROBLEM",
    "Blueprint",
    "Document",
    "ServiceContext",
    "authenticated",
    "create_service_app",
    "current_user_id",
    "problem",
    "revoked_here",
    "service",
    "unit_of_work",
]
