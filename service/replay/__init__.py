"""Record a PBX's AMI stream, and replay a recording through the real adapter and ledger."""
