"""Adapters: the implementations of the ports, and everything that touches I/O.

Kernel modules sit at this level (``database``, ``repository``, ``container``,
``settings``); the example ledger's mapping lives in ``adapters.ledger``.
"""
