"""The web console: server-rendered pages over the same gallery, events and privacy functions the
REST API uses, behind its own sign-in (console users, sessions in cookies, CSRF tokens).

`install(app)` (in `web/app.py`) adds it to the FastAPI app of `facegate serve`, at `/`.
"""
