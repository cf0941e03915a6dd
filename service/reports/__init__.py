"""What the client company receives: the monthly report, pushes, deliveries (issue 9)."""
