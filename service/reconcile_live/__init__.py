"""Reconciliation that runs by itself: Asterisk's CDR and queue_log taken continuously (from
PostgreSQL when Asterisk writes them there, or by following the files on the PBX host),
compared with the ledger by service.reconcile's functions, unknown calls settled, every
remaining difference kept for the supervisor page and /healthz."""
