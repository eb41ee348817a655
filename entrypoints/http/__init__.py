"""The HTTP entrypoint: a FastAPI app that speaks the ledger contract.

Import the app factory from ``entrypoints.http.app``. The package itself
imports nothing, so that the message consumer can reuse ``schemas`` (the
same validation as the HTTP bodies) without loading the app, which in turn
starts the consumer.
"""
