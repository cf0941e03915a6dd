"""Retention: per-client purge of callers' personal data past its period, and the audit."""
