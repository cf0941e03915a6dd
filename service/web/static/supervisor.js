// The supervisor desk: what a supervisor acts on during a shift, beside the wallboard that
// shows the floor.  Raised hands (手上げ) with the hold time counting and listen / take over /
// hand back; safety-net alerts (an escalated caller no supervisor answered) to clear; every
// operator's status and how long in it; complaints with status and resolution; recordings to
// play or download.  Updated from the live stream; each action answers in the page.
import {
  api, clientName, debounce, duration, explain, h, header, html, live, me, render, seconds,
  t, time, useEffect, useState, useTick,
} from "/static/app.js";
import { ComplaintForm, PAUSE_REASONS, Recordings, STATUSES } from "/static/callflows.js";

const user = await me();
header(user, "supervisor");
const clients = await api("/api/clients").then((r) => Object.fromEntries(r.items.map((c) => [c.code, c]))).catch(() => ({}));

function Note({ note }) {
  return html`<p class=${`status ${note.ok ? "ok" : "bad"}`} id=${note.id} role="status">${note.text}</p>`;
}

function Handraises({ items, reload }) {
  const [note, setNote] = useState({ id: "handraise-status", text: "", ok: true });
  const open = items.filter((r) => !r.ended_at);
  const recent = items.filter((r) => r.ended_at).slice(0, 5);
  const act = async (r, action) => {
    try {
      const done = await api(`/api/handraise/${r.id}/${action}`, { body: {} });
      const who = done.supervisor || r.helped_by || "";
      const text = action === "take_over" ? t("hr_done_take")
        : action === "hand_back" ? t("hr_done_back", { op: r.operator })
          : action === "whisper" ? t("hr_whispering", { who })
            : done.rung ? t("hr_listening_rung", { phone: who }) : t("hr_listening_muted", { who });
      setNote({ ...note, text, ok: true });
    } catch (error) {
      // Listen / whisper: a 4xx other than a role refusal is told with its status (an API
      // without these actions answers 404).
      const words = action === "listen" || action === "whisper"
        ? { 400: "hr_listen_refused", 404: "hr_listen_refused", 405: "hr_listen_refused", 409: "hr_supervise_refused" }
        : { 404: "hr_gone", 409: "hr_refused" };
      setNote({ ...note, text: explain(error, words), ok: false });
    }
    reload();
  };
  return html`<div id="handraises">
    <table class="cards"><thead><tr>${["operator_col", "client", "held_for", "helper", "actions"].map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
    <tbody>${open.length ? open.map((r) => html`<tr key=${r.id} data-id=${r.id} class="hr-open">
      <td data-label=${t("operator_col")} class="data">${r.operator}</td>
      <td data-label=${t("client")}>${clientName(clients, r.client)}</td>
      <td data-label=${t("held_for")} class="timer hold-timer">${duration(r.held_at)}</td>
      <td data-label=${t("helper")}>${r.helped_by ? t("hr_helping", { who: r.helped_by }) : html`<span class="warn">${t("hr_waiting")}</span>`}</td>
      <td data-label=${t("actions")}><div class="rowactions">
        <button type="button" class="listen" onClick=${() => act(r, "listen")}>${t("hr_listen")}</button>
        <button type="button" class="whisper" disabled=${!r.helped_by}
          aria-describedby=${r.helped_by ? undefined : `wait-${r.id}`} onClick=${() => act(r, "whisper")}>${t("hr_whisper")}</button>
        <button type="button" class="primary take-over" disabled=${!r.helped_by}
          aria-describedby=${r.helped_by ? undefined : `wait-${r.id}`} onClick=${() => act(r, "take_over")}>${t("hr_take_over")}</button>
        <button type="button" class="hand-back" onClick=${() => act(r, "hand_back")}>${t("hr_hand_back")}</button></div>
        ${r.helped_by ? "" : html`<span class="muted small" id=${`wait-${r.id}`}>${t("hr_wait_join")}</span>`}</td></tr>`)
      : html`<tr><td colspan="5" class="empty">${t("none")}</td></tr>`}</tbody></table>
    <${Note} note=${note} />
    ${recent.length ? html`<h3>${t("hr_recent")}</h3><ul class="recent" id="handraises-recent">${recent.map((r) => html`<li key=${r.id} data-id=${r.id} data-resolution=${r.resolution}>
      <span class="data">${r.operator}</span> · ${clientName(clients, r.client)} · ${time(r.ended_at, false)} · ${t("hr_result", {
        what: t("res_" + r.resolution), hold: seconds(r.hold_s) || "–", help: seconds(r.help_s) || "–" })}</li>`)}</ul>` : ""}
  </div>`;
}

function SafetyNet({ items, reload }) {
  const [note, setNote] = useState({ id: "safety-status", text: "", ok: true });
  const clear = async (a) => {
    try {
      await api(`/api/callflow-alerts/${a.id}/clear`, { body: {} });
      setNote({ ...note, text: t("cleared"), ok: true });
    } catch (error) {
      setNote({ ...note, text: explain(error, { 404: "hr_gone" }), ok: false });
    }
    reload();
  };
  return html`<div id="safety">
    <ul class="alerts">${items.length ? items.map((a) => {
      const status = (a.detail || {}).supervisor_queue_status;
      return html`<li key=${a.id} class="alert k-safety_net" data-id=${a.id}>
        <div class="row"><span class="kind">${t("a_safety_net")}</span><span class="timer">${duration(a.raised_at)}</span></div>
        <div class="text">${clientName(clients, a.client)} · ${t(status === "TIMEOUT" || status === "JOINEMPTY" ? "sn_" + status : "sn_other")} · ${t("sn_back")}</div>
        <div class="row"><span class="muted">${time(a.raised_at, false)}</span>
          <button type="button" class="clear" onClick=${() => clear(a)}>${t("clear")}</button></div></li>`;
    }) : html`<li class="muted">${t("none")}</li>`}</ul>
    <${Note} note=${note} /></div>`;
}

// Every operator's state, and the supervisor's hand on it: pause with a reason, back, or end
// their shift (a forgotten logout keeps a queue waiting on a phone nobody answers).
function PresenceActions({ p, reload, setNote }) {
  const [reason, setReason] = useState("meeting");
  const change = async (action) => {
    const body = { action, operator: p.operator };
    if (action === "pause") body.reason = reason;
    try {
      const next = await api("/api/presence", { body });
      setNote({ text: t("pr_changed", { op: p.operator, state: t("pr_" + next.state) }), ok: true });
    } catch (error) {
      setNote({ text: explain(error, { 409: "pr_refused", 400: "pr_refused" }), ok: false });
    }
    reload();
  };
  const id = `pr-reason-${p.operator}`;
  return html`<div class="rowform">
    ${p.state === "logged_in" ? html`<label for=${id} class="inline">${t("pr_reason")}</label>
      <select id=${id} value=${reason} onChange=${(e) => setReason(e.target.value)}>
        ${PAUSE_REASONS.map((r) => html`<option value=${r}>${t("reason_" + r)}</option>`)}</select>
      <button type="button" class="pr-pause" onClick=${() => change("pause")}>${t("pr_pause_op")}</button>` : ""}
    ${p.state === "paused" ? html`<button type="button" class="pr-unpause" onClick=${() => change("unpause")}>${t("pr_unpause")}</button>` : ""}
    ${p.state === "logged_in" || p.state === "paused" ? html`<button type="button" class="pr-logout danger"
      onClick=${() => change("logout")}>${t("pr_logout_op")}</button>` : ""}
  </div>`;
}

function Presence({ items, reload }) {
  const [note, setNote] = useState({ text: "", ok: true });
  const state = (p) => (p.state === "paused" ? `${t("pr_paused")} · ${t("reason_" + (p.reason || "other"))}` : t("pr_" + p.state));
  return html`<table class="cards" id="presence"><thead><tr>${["operator_col", "state", "in_state", "actions"].map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
    <tbody>${items.length ? items.map((p) => html`<tr key=${`${p.pbx_id}:${p.operator}`} data-operator=${p.operator} data-state=${p.state} class=${`pr-row pr-${p.state}`}>
      <td data-label=${t("operator_col")} class="data">${p.operator}</td>
      <td data-label=${t("state")}>${state(p)}</td>
      <td data-label=${t("in_state")}><span class="timer">${duration(p.started_at)}</span> <span class="muted">${t("pr_since", { t: time(p.started_at, false) })}</span></td>
      <td data-label=${t("actions")}><${PresenceActions} p=${p} reload=${reload} setNote=${setNote} /></td></tr>`)
      : html`<tr><td colspan="4" class="empty">${t("none")}</td></tr>`}</tbody></table>
    <p class=${`status ${note.ok ? "ok" : "bad"}`} id="presence-status" role="status">${note.text}</p>`;
}

function ComplaintRow({ c, reload, setNote }) {
  const [editing, setEditing] = useState(false);
  const [status, setStatus] = useState(c.status);
  const [resolution, setResolution] = useState(c.resolution || "");
  const [takenOver, setTakenOver] = useState(c.taken_over_by || "");
  const save = async (event) => {
    event.preventDefault();
    const body = { status };
    if (resolution.trim()) body.resolution = resolution.trim();
    if (takenOver.trim()) body.taken_over_by = takenOver.trim();
    try {
      const row = await api(`/api/complaints/${c.id}`, { body });
      setNote({ text: t("cp_updated", { id: c.id, status: t("cs_" + row.status) }), ok: true });
      setEditing(false);
      reload();
    } catch (error) {
      setNote({ text: explain(error, { 400: "cp_need_resolution", 404: "err_not_found" }), ok: false });
    }
  };
  const id = (name) => `c${c.id}-${name}`;
  return html`<tr data-id=${c.id} data-status=${c.status}>
    <td data-label=${t("started")}>${time(c.created_at)}</td>
    <td data-label=${t("client")}>${clientName(clients, c.client)}</td>
    <td data-label=${t("cp_category")}>${t("cat_" + c.category)}${c.named_operator ? html` · ${t("cp_named_short")} <span class="data">${c.named_operator}</span>` : ""}</td>
    <td data-label=${t("cp_body")} class="card data">${c.body}${c.resolution ? html`<br /><b>→</b> ${c.resolution}` : ""}</td>
    <td data-label=${t("cp_status")}><span class=${`cstatus cs-${c.status}`}>${t("cs_" + c.status)}</span>
      <span class="muted"> · ${t("cp_by")} <span class="data">${c.created_by}</span></span></td>
    <td data-label=${t("actions")}>
      ${c.status === "closed" ? "" : html`<button type="button" class="edit" aria-expanded=${String(editing)}
        onClick=${() => setEditing(!editing)}>${t("cp_update")}</button>`}
      ${editing ? html`<form class="complaint-update" onSubmit=${save}>
        <label for=${id("status")}>${t("cp_status")}</label>
        <select id=${id("status")} value=${status} onChange=${(e) => setStatus(e.target.value)}>
          ${STATUSES.map((s) => html`<option value=${s}>${t("cs_" + s)}</option>`)}</select>
        <label for=${id("resolution")}>${t("cp_resolution")}</label>
        <textarea id=${id("resolution")} rows="2" maxlength="4000" value=${resolution} onInput=${(e) => setResolution(e.target.value)}></textarea>
        <label for=${id("taken")}>${t("cp_taken_over_by")}</label>
        <input id=${id("taken")} maxlength="40" value=${takenOver} onInput=${(e) => setTakenOver(e.target.value)} />
        <p class="buttons"><button type="submit" class="primary">${t("save")}</button></p></form>` : ""}</td></tr>`;
}

function Complaints({ version, reload }) {
  const [filter, setFilter] = useState("open");
  const [items, setItems] = useState(null);
  const [error, setError] = useState("");
  const [note, setNote] = useState({ text: "", ok: true });
  useEffect(() => {
    let stale = false;
    const q = filter ? `?status=${filter}` : "";
    api(`/api/complaints${q}`).then((r) => { if (!stale) { setItems(r.items); setError(""); } })
      .catch((e) => { if (!stale) setError(explain(e)); });
    return () => { stale = true; };
  }, [filter, version]);
  return html`<div>
    <div class="filters"><div><label for="complaint-filter">${t("cp_status")}</label>
      <select id="complaint-filter" value=${filter} onChange=${(e) => setFilter(e.target.value)}>
        <option value="">${t("any_status")}</option>${STATUSES.map((s) => html`<option value=${s}>${t("cs_" + s)}</option>`)}</select></div></div>
    <p class="status bad" role="alert">${error}</p>
    <${Note} note=${{ ...note, id: "complaints-status" }} />
    ${items === null ? html`<p class="muted">${t("loading")}</p>` : html`<table class="cards" id="complaints">
      <thead><tr>${["started", "client", "cp_category", "cp_body", "cp_status", "actions"].map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
      <tbody>${items.length ? items.map((c) => html`<${ComplaintRow} key=${`${c.id}:${c.status}`} c=${c} reload=${reload} setNote=${setNote} />`)
        : html`<tr><td colspan="6" class="empty">${t("none")}</td></tr>`}</tbody></table>`}
    <details id="new-complaint"><summary>${t("new_complaint")}</summary>
      <${ComplaintForm} clients=${clients} idPrefix="nc" onDone=${reload} /></details>
  </div>`;
}

function App() {
  const [data, setData] = useState(null);
  const [error, setError] = useState("");
  const [version, setVersion] = useState(0);
  useTick(1000);
  useEffect(() => {
    let stale = false;
    (async () => {
      try {
        const [raised, alerts, presence, recordings] = await Promise.all([
          api("/api/handraise"), api("/api/callflow-alerts"), api("/api/presence"),
          api("/api/recordings?limit=50")]);
        if (!stale) {
          setData({ raised: raised.items, alerts: alerts.items.filter((a) => a.kind === "safety_net"),
            presence: presence.items, recordings: recordings.items });
          setError("");
        }
      } catch (e) {
        if (!stale) setError(explain(e));
      }
    })();
    return () => { stale = true; };
  }, [version]);
  useEffect(() => {
    const soon = debounce(() => setVersion((v) => v + 1), 250);
    // Only what the desk shows: a busy floor's call events would refetch it for nothing.
    const source = live((kind) => { if (["handraise", "alert", "resync"].includes(kind)) soon(); });
    // Presence changes, complaints and recordings made elsewhere come without a stream
    // event: a slow refresh picks them up.
    const timer = setInterval(soon, 10000);
    return () => { source.close(); clearInterval(timer); };
  }, []);
  const reload = () => setVersion((v) => v + 1);
  if (!data) return html`<main><p class="status bad" role="alert">${error}</p><p class="muted">${t("loading")}</p></main>`;
  const openCount = data.raised.filter((r) => !r.ended_at).length;
  return html`<main class="desk">
    <p class="status bad" role="alert">${error}</p>
    <section id="p-handraise" aria-labelledby="h-handraise"><h2 id="h-handraise">${t("handraises")} (${openCount})</h2>
      <${Handraises} items=${data.raised} reload=${reload} /></section>
    <section id="p-safety" aria-labelledby="h-safety"><h2 id="h-safety">${t("safety_net")} (${data.alerts.length})</h2>
      <${SafetyNet} items=${data.alerts} reload=${reload} /></section>
    <section id="p-presence" aria-labelledby="h-presence-all"><h2 id="h-presence-all">${t("presence_all")}</h2>
      <${Presence} items=${data.presence} reload=${reload} /></section>
    <section id="p-complaints" aria-labelledby="h-complaints"><h2 id="h-complaints">${t("complaints")}</h2>
      <${Complaints} version=${version} reload=${reload} /></section>
    <section id="p-recordings" aria-labelledby="h-recordings"><h2 id="h-recordings">${t("recordings")}</h2>
      <${Recordings} items=${data.recordings} clients=${clients} /></section>
  </main>`;
}

render(h(App, {}), document.getElementById("app"));
