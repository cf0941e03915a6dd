// The operator's screen pop, the single source of truth during a call: whose phone this is
// (client name and greeting, large), who calls (number as people read it, history, call backs
// owed), where the call stands (ringing, talking, taken by another operator, ended) with a
// timer, and one-click message and escalation.  Restored from the live state on reload.
import {
  api, clientName, confirmDialog, duration, h, header, html, live, me, outcome, problem,
  render, syncClock, t, time, useEffect, useState, useTick, word,
} from "/static/app.js";

const user = await me();
header(user, "operator");
const ESCALATION_REASONS = ["complaint", "complaint_naming_operator", "payment_dispute", "other"];

function StateLine({ pop }) {
  const labels = { ringing: t("pop_ringing"), talking: t("pop_talking"), ended: t("pop_ended"),
    taken: t("pop_taken", { op: pop.call.answered_by }), missed_ring: t("pop_missed_ring") };
  return html`<div class=${`pop-state ${pop.state}`} id="pop-state" data-state=${pop.state} role="status">
    <span>${labels[pop.state] || pop.state}</span>
    ${["ringing", "talking"].includes(pop.state) ? html`<span class="timer" id="pop-timer">${duration(pop.since)}</span>` : ""}
  </div>`;
}

function Repeat({ pop }) {
  const r = pop.repeat;
  if (!r) {
    if (!pop.call.escalated) return null;
    return html`<p class="repeat" id="escalation">${t("pop_escalated")}: ${word(pop.escalation_reason || "unspecified", "unspecified")}</p>`;
  }
  return html`<div class="repeat" id="repeat">
    <b>${t("repeat_title", { n: r.calls })}</b>
    <dl>
      <dt>${t("repeat_first")}</dt><dd id="repeat-first">${r.first_at ? time(r.first_at) : t("none")}</dd>
      <dt>${t("repeat_owed")}</dt><dd id="repeat-owed">${r.owed ? t("owed", { n: r.owed }) : t("owed_none")}${r.owed_since ? ` (${time(r.owed_since)})` : ""}</dd>
      <dt>${t("repeat_last")}</dt><dd id="repeat-last" class="data">${r.last_operator || t("none")}</dd>
    </dl></div>`;
}

function History({ pop, clients }) {
  const rows = pop.history;
  return html`<table class="cards"><thead><tr><th>${t("started")}</th><th>${t("outcome")}</th><th>${t("by")}</th></tr></thead>
    <tbody>${rows.length ? rows.map((c) => html`<tr key=${c.id}>
      <td data-label=${t("started")}>${time(c.started_at)}</td>
      <td data-label=${t("outcome")}>${c.direction === "outbound" ? `${t("dir_outbound")}: ${word("r_" + (c.dial_result || "failed"), "r_failed")}` : c.ended_at ? outcome(c.outcome) : t("in_progress")}</td>
      <td data-label=${t("by")} class="data">${c.answered_by || c.placed_by || ""}</td></tr>`)
      : html`<tr><td colspan="3" class="empty">${t("none")}</td></tr>`}</tbody></table>`;
  void clients;
}

function MessageForm({ pop, onSent }) {
  const [body, setBody] = useState("");
  const [disposition, setDisposition] = useState("callback_requested");
  const [status, setStatus] = useState("");
  const call = pop.call;
  const send = async (event) => {
    event.preventDefault();
    try {
      await api("/api/messages", { body: { client: call.client, disposition, body,
        caller_number: call.caller_number, caller_name: call.caller_name,
        pbx: call.pbx_id, linkedid: call.linkedid } });
      setStatus(t("sent"));
      setBody("");
      onSent();
    } catch (error) {
      setStatus(problem(error));
    }
  };
  return html`<form id="message-form" onSubmit=${send}>
    <label for="disposition">${t("disposition")}</label>
    <select id="disposition" value=${disposition} onChange=${(e) => setDisposition(e.target.value)}>
      ${["callback_requested", "urgent", "info_only"].map((d) => html`<option value=${d}>${t(d)}</option>`)}</select>
    <label for="body">${t("message")}</label>
    <textarea id="body" rows="4" required value=${body} onInput=${(e) => setBody(e.target.value)}></textarea>
    <p class="buttons"><button class="primary" type="submit">${t("send")}</button></p>
    <p id="status" class="status" role="status">${status}</p>
  </form>`;
}

function Escalate() {
  const [reason, setReason] = useState("complaint");
  const [status, setStatus] = useState("");
  const go = async () => {
    if (!(await confirmDialog(t("escalate_confirm", { reason: t(reason) }), t("escalate")))) return;
    try {
      const result = await api("/api/escalations", { body: { reason } });
      setStatus(result.moved ? t("escalated_ok") : t("escalate_failed"));
    } catch (error) {
      setStatus(error.status === 502 ? t("escalate_failed") : problem(error));
    }
  };
  return html`<div class="rowform" id="escalate">
    <label for="escalate-reason" class="inline">${t("escalate_reason")}</label>
    <select id="escalate-reason" value=${reason} onChange=${(e) => setReason(e.target.value)}>
      ${ESCALATION_REASONS.map((r) => html`<option value=${r}>${t(r)}</option>`)}</select>
    <button type="button" class="danger" id="escalate-button" onClick=${go}>${t("escalate")}</button>
    <span class="status" id="escalate-status" role="status">${status}</span>
  </div>`;
}

function Pop({ pop, clients, reload }) {
  const call = pop.call;
  const client = pop.client || {};
  const canWrite = ["ringing", "talking", "ended"].includes(pop.state);
  return html`<main class="pop">
    <section id="p-call" aria-labelledby="client-name">
      <${StateLine} pop=${pop} />
      <h2 class="client-name" id="client-name">${clientName(clients, call.client)}</h2>
      <p class="caller-line">${t("caller")}: <strong id="caller-name" class="data">${call.caller_name || ""}</strong>
        ${" "}<span class="num data" id="caller-number">${call.caller_e164_display || t("withheld")}</span></p>
      <${Repeat} pop=${pop} />
      <h3>${t("greeting")}</h3>
      <p class="greeting data" id="greeting">${client.greeting_script || t("none")}</p>
      <h3>${t("notes")}</h3><p class="card data" id="notes">${client.notes || t("none")}</p>
      ${pop.state === "talking" ? html`<${Escalate} />` : ""}
    </section>
    <section id="p-message" aria-labelledby="h-message"><h2 id="h-message">${t("message")}</h2>
      ${canWrite ? html`<${MessageForm} key=${call.linkedid} pop=${pop} onSent=${reload} />`
        : html`<p class="muted" id="message-closed">${t("pop_taken", { op: call.answered_by || "" })}</p>`}
    </section>
    <section id="p-callbacks" aria-labelledby="h-callbacks"><h2 id="h-callbacks">${t("open_callbacks")}</h2>
      <ul id="open-callbacks">${pop.open_callbacks.length ? pop.open_callbacks.map((o) => html`<li key=${o.id}>
        ${t("missed_calls_n", { n: o.calls })} · ${t("due_in", { t: time(o.due_at) })}</li>`)
        : html`<li class="muted">${t("none")}</li>`}</ul>
    </section>
    <section id="p-history" aria-labelledby="h-history"><h2 id="h-history">${t("history")}</h2>
      <div id="history"><${History} pop=${pop} clients=${clients} /></div></section>
  </main>`;
}

function App({ clients }) {
  const [pop, setPop] = useState(undefined);
  useTick(1000);
  useEffect(() => {
    let current = null;
    const show = async (path) => {
      try {
        const next = await api(path);
        syncClock(next.now);
        if (next.call) current = next.call;
        setPop(next.call ? next : null);
      } catch (error) {
        if (error.status !== 404) setPop((old) => old ?? null);
      }
    };
    const byCall = (pbx, linkedid) =>
      show(`/api/screen?pbx=${encodeURIComponent(pbx)}&linkedid=${encodeURIComponent(linkedid)}`);
    show("/api/screen/current");
    const source = live((kind, event) => {
      if (kind === "ring" && event.agent === user.extension) byCall(event.pbx, event.linkedid);
      else if (kind === "call" && current && event.pbx === current.pbx_id && event.linkedid === current.linkedid) {
        byCall(event.pbx, event.linkedid);
      } else if (kind === "resync") show("/api/screen/current");
    });
    return () => source.close();
  }, []);
  if (pop === undefined) return html`<main><p class="muted">${t("loading")}</p></main>`;
  if (pop === null) return html`<main><section><p class="muted" id="no-call">${t("no_call")}</p></section></main>`;
  return html`<${Pop} pop=${pop} clients=${clients} reload=${() => {}} />`;
}

const clients = await api("/api/clients").then((r) => Object.fromEntries(r.items.map((c) => [c.code, c]))).catch(() => ({}));
render(h(App, { clients }), document.getElementById("app"));
