"""The example ledger's use cases: one unit of work each, retried on conflict."""
