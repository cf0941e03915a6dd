"""The web side: REST API with roles, the live stream, and the pages (dashboard, operator
screen, call-back worklist, client portal)."""
