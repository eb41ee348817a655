"""The HTTP entrypoint: a FastAPI app that speaks the ledger contract."""

from entrypoints.http.app import create_app

__all__ = ["create_app"]
