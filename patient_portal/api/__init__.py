"""The JSON API (``/api/v1``): typed endpoints, problem+json errors and the OpenAPI document."""

from patient_portal.api.routing import Api, Endpoint

__all__ = ["Api", "Endpoint"]
