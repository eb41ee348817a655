"""Adapters: the implementations of the ports, and everything that touches I/O.

Kernel modules sit at this level (``database``, ``repository``,
``unit_of_work``, ``outbox``, ``relay``, ``brokers``, ...); each bounded
context's mapping, queries and migrations are a sub-package named after it.
"""
