"""Channel-variable names: the contract between the ``route`` AGI, the dialplan and the ledger.

The dialplan include (``dialplan/orikaeshi.conf``) uses exactly these names, and
``orikaeshi dialplan check`` verifies that it does.  Change a name here and nowhere else.
"""

from __future__ import annotations

# --- set by the route AGI on the caller's channel ------------------------------------------
ACCOUNTCODE = "CHANNEL(accountcode)"  # the client code; inherited by member channels, in CDRs
CLIENT = "ROUTE_CLIENT"               # the client code again, as a plain variable
ACTION = "ROUTE_ACTION"               # one of ACTIONS below
QUEUE = "ROUTE_QUEUE"                 # queue to join
PRIORITY = "QUEUE_PRIO"               # read by app_queue itself
QUEUE_TIMEOUT = "QUEUE_WAIT"          # Queue() timeout, seconds
OVERFLOW_QUEUE = "ROUTE_OVERFLOW"     # queue joined when QUEUE times out ("" = none)
OVERFLOW_TIMEOUT = "OVERFLOW_WAIT"    # Queue() timeout in the overflow queue, seconds
WHISPER = "WHISPER"                   # announceoverride played to the answering member
GREETING = "GREETING"                 # played to the caller before queueing ("" = none)
CLOSED_PROMPT = "CLOSED_PROMPT"       # played when closed, before voicemail or hang-up
VM_BOX = "VM_BOX"                     # voicemail box (mailbox@context)
FORWARD_TO = "FORWARD_TO"             # outside number dialled when ACTION is forward
AFTER_TIMEOUT = "AFTER_TIMEOUT"       # what follows a queue timeout: voicemail | hangup
ESCALATED = "ESCALATED"               # "1" when the call goes to the supervisors
ESCALATION_REASON = "ESCALATION_REASON"  # repeat_caller, complaint, ...
ROUTE_FLAGS = "ROUTE_FLAGS"           # comma-separated facts, e.g. unknown_did
# For the whisper to whoever answers an escalated repeat caller.  The leading "__" makes
# Asterisk copy them to the member channels the queue creates, where the whisper Gosub runs.
REPEAT_COUNT = "__REPEAT_COUNT"       # this call's number in the caller's streak (3 = third)
REPEAT_SINCE = "__REPEAT_SINCE"       # epoch of the streak's first call: no call back since
ROUTE_TZ = "__ROUTE_TZ"               # the client's time zone, to say that time
# --- set by the dialplan --------------------------------------------------------------------
ROUTE_SOURCE = "ROUTE_SOURCE"         # "fallback" when the AGI failed and the static map routed
# The fallback's trace that outlives the channel: the CDR's userfield reaches cdr-csv
# (Master.csv), cdr_manager's Cdr event (UserField) and so `orikaeshi reconcile`.
CDR_USERFIELD = "CDR(userfield)"
FALLBACK_USERFIELD = "orikaeshi-fallback"
DID = "__DID"                         # dialled number, inherited by every channel of the call
ESCALATION_KEY = "ESCALATION_KEY"     # digit the operator pressed after the feature code

ACTIONS = ("queue", "closed", "forward", "reject")
FALLBACK = "fallback"

# --- set by Asterisk itself, read by the ledger ---------------------------------------------
QUEUESTATUS = "QUEUESTATUS"
VMSTATUS = "VMSTATUS"
DIALSTATUS = "DIALSTATUS"
AGISTATUS = "AGISTATUS"

# Order in which the route AGI sets them (the account code first, so that every later event
# of the channel already carries the client).
ROUTE_ORDER = (ACCOUNTCODE, CLIENT, ACTION, QUEUE, PRIORITY, QUEUE_TIMEOUT, OVERFLOW_QUEUE,
               OVERFLOW_TIMEOUT, WHISPER, GREETING, CLOSED_PROMPT, VM_BOX, FORWARD_TO,
               AFTER_TIMEOUT, ESCALATED, ESCALATION_REASON, REPEAT_COUNT, REPEAT_SINCE,
               ROUTE_TZ, ROUTE_FLAGS)

# --- set by the outbound_guard AGI on an operator's outbound channel (issue 13) ------------
OUTBOUND_ALLOWED = "OUTBOUND_ALLOWED"  # "1" may Dial; anything else is refused
OUTBOUND_RULE = "OUTBOUND_RULE"        # allowed | calling_hours | max_attempts | do_not_call ...
OUTBOUND_PROMPT = "OUTBOUND_PROMPT"    # the refusal the operator hears
OUTBOUND_ORDER = (OUTBOUND_ALLOWED, OUTBOUND_RULE, OUTBOUND_PROMPT)
# Set by click-to-call / scheduled call backs on the Originate: the outbound_decisions row
# that already allowed this call, so the guard in the outbound context does not count it
# twice (the AGI checks that the row exists, is fresh and is for this callee).
OUTBOUND_DECISION = "OUTBOUND_DECISION"
