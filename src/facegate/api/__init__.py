"""The REST service: FastAPI app, API keys with roles, problem+json errors."""
