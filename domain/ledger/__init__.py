"""The example money ledger: accounts, their entries and transfers between them.

Plain Python. Delete this package (with ``adapters.ledger``,
``service_layer.ledger`` and the ledger's migration) and the kernel still stands.
"""
