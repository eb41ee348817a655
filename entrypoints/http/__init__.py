"""The HTTP entrypoint: the kernel's FastAPI app factory, problems, probes and docs.

Import the app factory from ``entrypoints.http.app``. The package itself
imports nothing, so that a context's message entrypoint can reuse its request
schemas (the same validation as the HTTP bodies) without loading the app.
"""
