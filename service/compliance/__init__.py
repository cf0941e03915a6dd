"""The law on every outbound call: one policy (calling hours, contact limits, do-not-call)
that click-to-call, scheduled call backs and handset dials all ask, and its evidence."""
