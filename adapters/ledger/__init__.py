"""Persistence of the example ledger: tables, imperative mapping, read-side queries."""
