"""The service layer: use cases, each one unit of work.

Kernel modules sit at this level (``unit_of_work``, ``retry``); the example
ledger's use cases live in ``service_layer.ledger``.
"""
