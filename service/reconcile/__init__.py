"""Reconciliation: the ledger against Asterisk's own CDR (Master.csv) and queue_log."""
