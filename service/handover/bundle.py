"""The handover bundle's format: file names, the README written into every bundle, and the
CSV formats accepted from another company.  (docs/reports.md links here.)"""

from __future__ import annotations

FORMAT = "orikaeshi-handover"
VERSION = 1

FILES = {
    "manifest": "manifest.json",
    "client": "client.yaml",
    "calls": "calls.jsonl",
    "messages": "messages.jsonl",
    "obligations": "obligations.jsonl",
    "voicemails": "voicemails.jsonl",
    "readme": "README.md",
}

# From another answering company: what the client is still owed, as plain CSV (UTF-8, BOM
# allowed, header row).
CALLBACKS_CSV = "callbacks.csv"
CALLBACKS_COLUMNS = ("number", "name", "opened_at", "due_at", "reason", "note")
MESSAGES_CSV = "messages.csv"
MESSAGES_COLUMNS = ("taken_at", "number", "name", "disposition", "body", "taken_by")

README = """# 引き継ぎデータ / Handover bundle ({client})

Exported by orikaeshi on {exported_at} ({count_calls} calls, {count_messages} messages,
{count_obligations} call-back obligations, {count_voicemails} voicemails{since}).

Every file is UTF-8.  Times are ISO 8601 with their UTC offset, in the client's time zone
({timezone}).  Phone numbers appear twice: as the carrier presented them
(`caller_number`, `callee_number`) and normalised to E.164 (`caller_e164`, `callee_e164`,
empty when the number was withheld).

| file | content |
|---|---|
| `manifest.json` | format `{format}` version {version}, bundle id, client, export time, counts |
| `client.yaml` | the client's settings as a fragment of an orikaeshi clients file (`clients load`); the webhook secret is not exported |
| `calls.jsonl` | one call per line: every field of the ledger (`outcome` from the closed set: answered, abandoned, short_abandon, ivr_hangup, timeout, no_agents, queue_full, exit_key, after_hours, forwarded, unknown), with `stints` (each stay in a queue: joined, connected, left, agent, result, wait, talk) and `rings` (each ring of an operator: started, ended, result, ring_ms); inbound calls and the call backs placed for the client (`direction` outbound) |
| `messages.jsonl` | 受電報告: `created_at`, caller, `disposition` (callback_requested, urgent, info_only), `body`, `taken_by`, `obligation_id` (an `id` in obligations.jsonl) |
| `obligations.jsonl` | call-back obligations: `state` (open, fulfilled, expired, cancelled, cannot_call_back), `fulfilment` (verified: the call back was seen on the PBX; reported: the client said so), `opened_at`, `due_at`, `fulfilled_at`, `calls` (how many calls it covers), `call_refs` (those calls, by `pbx_id`/`linkedid`) and `attempts` (every call back placed: started, answered, result) |
| `voicemails.jsonl` | a reference to each voicemail left: the call (`pbx_id`, `linkedid`), `started_at`, the mailbox (`voicemail_box`); the recordings stay in the PBX's voicemail spool under that mailbox |

Import into orikaeshi with `orikaeshi import handover <this folder>`; importing twice
changes nothing.  From another system, the open call backs and the messages still to pass on
can be given as CSV files in a folder (`orikaeshi import handover DIR --client CODE`):

* `{callbacks_csv}`: {callbacks_columns}
* `{messages_csv}`: {messages_columns}
"""
