"""Call flows an answering company runs every day (docs/callflows.md): the escalation safety
net, 手上げ with hold, complaints, call recording and operator presence."""
