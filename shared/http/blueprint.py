"""flask-smorest's Blueprint, with argument schemas made once.

Given a schema class, webargs builds an instance on every request (marshmallow deep-copies
the declared fields each time: a third of a millisecond). Resolving it at decoration time
gives the same parsing and the same OpenAPI document for none of that cost.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask_smorest.utils import resolve_schema_instance


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema: Any, **kwargs: Any) -> Any:
        return super().arguments(resolve_schema_instance(schema), **kwargs)
