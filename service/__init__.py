"""orikaeshi: routing, an honest call ledger and repeat-caller escalation beside Asterisk."""
