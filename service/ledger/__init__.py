"""The call ledger: every call the PBX saw, once, with one outcome from a closed set."""
