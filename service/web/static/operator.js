// The operator's screen pop, the single source of truth during a call: whose phone this is
// (client name and greeting, large), who calls (number as people read it, history, call backs
// owed), where the call stands (ringing, talking, taken by another operator, ended) with a
// timer, and one-click message and escalation.  Restored from the live state on reload.
import {
  api, clientName, confirmDialog, duration, explain, h, hasWord, header, html, live, me, outcome,
  problem, render, seconds, syncClock, t, time, useEffect, useState, useTick, word,
} from "/static/app.js";
import { Code, codeText, ComplaintForm, PAUSE_REASONS } from "/static/callflows.js";

const user = await me();
header(user, "operator");
const ESCALATION_REASONS = ["complaint", "complaint_naming_operator", "payment_dispute", "other"];
// An operator acts on their own phone; a supervisor or admin on this page names theirs.
const mine = (body = {}) => (user.role === "operator" ? body : { ...body, operator: user.extension });

// Presence: log in / log out / pause with a reason / back, the state now and since when.
function Presence({ state, setState }) {
  const [reason, setReason] = useState("break");
  const [queues, setQueues] = useState("");
  const [status, setStatus] = useState({ text: "", ok: true });
  if (!user.extension) {
    return html`<section id="p-presence" class="presence"><p class="muted">${t("pr_no_phone")}</p></section>`;
  }
  const now = state ? state.state : "unknown";
  const change = async (action) => {
    const body = { action };
    if (action === "pause") body.reason = reason;
    const list = queues.split(/[\s,、]+/).filter(Boolean);
    if (action === "login" && list.length) body.queues = list;
    try {
      const next = await api("/api/presence", { body: mine(body) });
      setState(next);
      setStatus({ text: t("pr_done", { state: t("pr_" + next.state) }), ok: true });
    } catch (error) {
      setStatus({ text: explain(error, { 409: "pr_refused", 400: "pr_refused" }), ok: false });
    }
  };
  return html`<section id="p-presence" class="presence" aria-labelledby="h-presence">
    <div class="presence-now">
      <h2 id="h-presence">${t("presence")}</h2>
      <span class=${`pr-state pr-${now}`} id="presence-state" data-state=${now}>${t("pr_" + now)}${state && state.reason ? ` · ${t("reason_" + state.reason)}` : ""}</span>
      ${state && state.started_at ? html`<span class="muted" id="presence-since">${t("pr_since", { t: time(state.started_at) })}${" "}<span class="timer">${duration(state.started_at)}</span></span>` : ""}
    </div>
    <div class="rowform">
      ${now === "logged_out" || now === "unknown" ? html`
        <label for="pr-queues" class="inline">${t("pr_queues")}</label>
        <input id="pr-queues" class="short" value=${queues} onInput=${(e) => setQueues(e.target.value)} />
        <button type="button" class="primary" id="pr-login" onClick=${() => change("login")}>${t("pr_login")}</button>` : ""}
      ${now === "logged_in" ? html`
        <label for="pr-reason" class="inline">${t("pr_reason")}</label>
        <select id="pr-reason" value=${reason} onChange=${(e) => setReason(e.target.value)}>
          ${PAUSE_REASONS.map((r) => html`<option value=${r}>${t("reason_" + r)}</option>`)}</select>
        <button type="button" id="pr-pause" onClick=${() => change("pause")}>${t("pr_pause")}</button>` : ""}
      ${now === "paused" ? html`<button type="button" class="primary" id="pr-unpause" onClick=${() => change("unpause")}>${t("pr_unpause")}</button>` : ""}
      ${now === "logged_in" || now === "paused" ? html`<button type="button" id="pr-logout" onClick=${() => change("logout")}>${t("pr_logout")}</button>` : ""}
    </div>
    <p id="presence-status" class=${`status ${status.ok ? "" : "bad"}`} role="status">${status.text}</p>
  </section>`;
}

// Where the 手上げ stands, from the live stream: waiting for a supervisor, one joined, taken
// over, handed back; the hold time ticks while the caller waits.
function HandraiseState({ raised }) {
  if (!raised) return null;
  const open = raised.state === "held" || raised.state === "joined";
  const text = raised.state === "joined" ? t("hr_joined", { who: raised.helped_by || "" })
    : t("hr_" + raised.state);
  return html`<div class=${`handraise hr-${raised.state}`} id="handraise-state" data-state=${raised.state} role="status">
    <b>${text}</b>
    <span class="timer">${open ? t("hr_hold_time", { d: duration(raised.held_at) })
      : raised.hold_s !== null && raised.hold_s !== undefined ? t("hr_hold_time", { d: seconds(raised.hold_s) }) : ""}</span>
  </div>`;
}

// The buttons of a call in progress: 手上げ (hold and call a supervisor) and 録音 (clients
// recorded on request), with the recording indicator.
function CallTools({ pop, raised, onRaised, recorded, onRecorded }) {
  const [status, setStatus] = useState({ text: "", ok: true });
  const flows = pop.callflows || {};
  const talking = pop.state === "talking";
  const open = raised && (raised.state === "held" || raised.state === "joined");
  const hold = async () => {
    try {
      const made = await api("/api/handraise", { body: mine() });
      onRaised({ id: made.id, state: "held", held_at: new Date().toISOString(), helped_by: null });
      setStatus({ text: "", ok: true });
    } catch (error) {
      setStatus({ text: explain(error, { 404: "hr_no_call", 409: "hr_not_bridged" }), ok: false });
    }
  };
  const record = async () => {
    try {
      await api("/api/recordings", { body: mine() });
      onRecorded();
      setStatus({ text: t("rec_started"), ok: true });
    } catch (error) {
      setStatus({ text: explain(error, { 404: "rec_no_call", 409: "rec_refused" }), ok: false });
    }
  };
  const isRecorded = flows.recording_policy === "all" || recorded;
  return html`<div class="calltools" id="calltools">
    ${isRecorded ? html`<span class="rec-on" id="recording-indicator"
      title=${flows.recording_policy === "all" ? t("rec_all") : t("rec_started")}>${t("rec_on")}</span>` : ""}
    ${talking && !open ? html`<button type="button" class="primary" id="handraise-button" onClick=${hold}>${t("hr_button")}</button>` : ""}
    ${talking && flows.recording_policy === "on_demand" && !recorded ? html`<button type="button" id="record-button" onClick=${record}>${t("rec_button")}</button>` : ""}
    <span class=${`status ${status.ok ? "" : "bad"}`} id="calltools-status" role="status">${status.text}</span>
  </div>`;
}

// The call's result code (the client's list) after an answered call, with the after-call
// work time ticking until it is chosen.
function Wrapup({ pop }) {
  const flows = pop.callflows || {};
  const call = pop.call;
  const codes = flows.dispositions || [];
  const [code, setCode] = useState(codes[0] || "");
  const [chosen, setChosen] = useState(flows.disposition || null);
  const [status, setStatus] = useState({ text: "", ok: true });
  useEffect(() => { if (flows.disposition) setChosen(flows.disposition); }, [flows.disposition]);
  if (!codes.length) return html`<p class="muted" id="wrapup-none">${t("dp_none")}</p>`;
  const answered = call.answered_at && (!call.answered_by || call.answered_by === user.extension);
  if (!answered) return html`<p class="muted" id="wrapup-not-yet">${t("dp_not_yet")}</p>`;
  const save = async (event) => {
    event.preventDefault();
    try {
      const done = await api("/api/dispositions", { body: { pbx: call.pbx_id, linkedid: call.linkedid, code } });
      setChosen(done.code);
      setStatus({ text: t("dp_saved", { code: codeText(done.code) }), ok: true });
    } catch (error) {
      setStatus({ text: explain(error, { 400: "dp_bad", 404: "dp_bad" }), ok: false });
    }
  };
  const wrapping = call.ended_at && !chosen;
  return html`<form id="wrapup-form" class="rowform" onSubmit=${save}>
    <p id="wrapup-state" class=${`wrapup ${wrapping ? "wrapping" : ""}`} data-state=${chosen ? "done" : wrapping ? "wrapup" : "talking"}>
      ${chosen ? [t("dp_done", { code: "" }), html`<${Code} code=${chosen} />`]
        : wrapping ? t("dp_wrapup", { d: duration(call.ended_at) }) : ""}</p>
    <label for="wrapup-code" class="inline">${t("dp_choose")}</label>
    <select id="wrapup-code" value=${code} onChange=${(e) => setCode(e.target.value)}>
      ${codes.map((c) => html`<option value=${c} class=${hasWord("dc_" + c) ? "" : "data"}>${codeText(c)}</option>`)}</select>
    <button type="submit" class=${wrapping ? "primary" : ""} id="wrapup-save">${t("dp_save")}</button>
    <span class=${`status ${status.ok ? "" : "bad"}`} id="wrapup-status" role="status">${status.text}</span>
  </form>`;
}

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

function Pop({ pop, clients, reload, raised, onRaised, presence }) {
  const call = pop.call;
  const client = pop.client || {};
  const canWrite = ["ringing", "talking", "ended"].includes(pop.state);
  const [recorded, setRecorded] = useState(Boolean(pop.callflows && pop.callflows.recorded));
  useEffect(() => { if (pop.callflows && pop.callflows.recorded) setRecorded(true); }, [pop.callflows && pop.callflows.recorded]);
  return html`<main class="pop">
    ${presence}
    <section id="p-call" aria-labelledby="client-name">
      <${StateLine} pop=${pop} />
      <${HandraiseState} raised=${raised} />
      <h2 class="client-name" id="client-name">${clientName(clients, call.client)}</h2>
      <p class="caller-line">${t("caller")}: <strong id="caller-name" class="data">${call.caller_name || ""}</strong>
        ${" "}<span class="num data" id="caller-number">${call.caller_e164_display || t("withheld")}</span></p>
      <${CallTools} pop=${pop} raised=${raised} onRaised=${onRaised} recorded=${recorded}
        onRecorded=${() => setRecorded(true)} />
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
    <section id="p-wrapup" aria-labelledby="h-wrapup"><h2 id="h-wrapup">${t("dp_title")}</h2>
      <${Wrapup} key=${call.linkedid} pop=${pop} /></section>
    <section id="p-complaint" aria-labelledby="h-complaint"><details id="complaint">
      <summary><h2 id="h-complaint">${t("cp_open")}</h2></summary>
      <p class="muted">${t("cp_for_call")}: ${clientName(clients, call.client)} · ${time(call.started_at)}</p>
      <${ComplaintForm} key=${call.linkedid} call=${call} clients=${clients} /></details></section>
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
  const [raised, setRaised] = useState(null);
  const [presence, setPresence] = useState(null);
  useTick(1000);
  useEffect(() => {
    let current = null;
    const show = async (path) => {
      try {
        const next = await api(path);
        syncClock(next.now);
        if (next.call) current = next.call;
        setPop(next.call ? next : null);
        // The call's 手上げ as the database has it (after a reload, or a gap in the stream).
        if (next.call) setRaised((next.callflows && next.callflows.handraise) || null);
      } catch (error) {
        if (error.status !== 404) setPop((old) => old ?? null);
      }
    };
    const byCall = (pbx, linkedid) =>
      show(`/api/screen?pbx=${encodeURIComponent(pbx)}&linkedid=${encodeURIComponent(linkedid)}`);
    const loadPresence = async () => {
      if (!user.extension) return;
      try {
        const { items } = await api("/api/presence");
        setPresence(items.find((p) => p.operator === user.extension) || null);
      } catch { /* the bar says "not set yet" */ }
    };
    show("/api/screen/current");
    loadPresence();
    const source = live((kind, event) => {
      if (kind === "ring" && event.agent === user.extension) byCall(event.pbx, event.linkedid);
      else if (kind === "call" && current && event.pbx === current.pbx_id && event.linkedid === current.linkedid) {
        byCall(event.pbx, event.linkedid);
      } else if (kind === "handraise" && event.operator === user.extension) {
        setRaised(event);
      } else if (kind === "resync") { show("/api/screen/current"); loadPresence(); }
    });
    // A supervisor's change or a feature code (*40-*43) sends no stream event: a slow
    // refresh shows it.
    const timer = setInterval(loadPresence, 10000);
    return () => { source.close(); clearInterval(timer); };
  }, []);
  const bar = html`<${Presence} state=${presence} setState=${setPresence} />`;
  if (pop === undefined) return html`<main><p class="muted">${t("loading")}</p></main>`;
  if (pop === null) {
    return html`<main class="pop">${bar}<section><p class="muted" id="no-call">${t("no_call")}</p></section></main>`;
  }
  return html`<${Pop} pop=${pop} clients=${clients} reload=${() => {}} raised=${raised}
    onRaised=${setRaised} presence=${bar} />`;
}

const clients = await api("/api/clients").then((r) => Object.fromEntries(r.items.map((c) => [c.code, c]))).catch(() => ({}));
render(h(App, { clients }), document.getElementById("app"));
