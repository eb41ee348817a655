"""Entrypoints: the composition root, the HTTP app, the CLI, the consumer and the relay.

Each bounded context's routes, schemas and message wiring are a sub-package
named after it, which exports the context's ``BoundedContext`` as ``context``.
"""
