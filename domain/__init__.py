"""The domain layer: plain Python, no framework imports.

Kernel modules sit at this level (``aggregate``, ``errors``); the example money
ledger lives in ``domain.ledger`` and can be deleted without touching them.
"""
