// The call flows' parts shared by the operator's pop, the supervisor desk and the portal
// (docs/callflows.md): the complaint form, the recordings list with its player, and the words
// for the codes the call-flow APIs answer with.
import { api, clientName, explain, hasWord, html, t, time, useState } from "/static/app.js";

export const CATEGORIES = ["operator_attitude", "operator_mistake", "no_callback", "service",
  "payment", "other"];
export const STATUSES = ["open", "in_progress", "resolved", "closed"];
export const PAUSE_REASONS = ["break", "after_call_work", "training", "meeting", "lunch", "other"];

// A disposition code is the client's own (clients file): a word when the page knows it,
// otherwise the code itself, shown as data.
export function Code({ code }) {
  return hasWord("dc_" + code) ? t("dc_" + code) : html`<span class="data">${code}</span>`;
}

export function codeText(code) {
  return hasWord("dc_" + code) ? t("dc_" + code) : code;
}

// The complaint form: prefilled with the call (pbx, linkedid, client) on the pop; on the
// supervisor desk the client is chosen.
export function ComplaintForm({ call, clients, idPrefix = "cp", onDone }) {
  const codes = Object.keys(clients || {});
  const [client, setClient] = useState(call ? call.client : codes[0] || "");
  const [category, setCategory] = useState("operator_attitude");
  const [body, setBody] = useState("");
  const [named, setNamed] = useState("");
  const [status, setStatus] = useState({ text: "", ok: true });
  const id = (name) => `${idPrefix}-${name}`;
  const save = async (event) => {
    event.preventDefault();
    const data = { client: call ? call.client : client, category, body };
    if (named.trim()) data.named_operator = named.trim();
    if (call) { data.pbx = call.pbx_id; data.linkedid = call.linkedid; }
    try {
      const made = await api("/api/complaints", { body: data });
      setStatus({ text: t("cp_saved", { id: made.id }), ok: true });
      setBody(""); setNamed("");
      if (onDone) onDone(made.id);
    } catch (error) {
      setStatus({ text: explain(error, { 400: "cp_bad" }), ok: false });
    }
  };
  return html`<form id=${id("form")} class="complaint" onSubmit=${save}>
    ${call ? "" : html`<label for=${id("client")}>${t("client")}</label>
      <select id=${id("client")} value=${client} onChange=${(e) => setClient(e.target.value)}>
        ${codes.map((c) => html`<option value=${c}>${clientName(clients, c)}</option>`)}</select>`}
    <label for=${id("category")}>${t("cp_category")}</label>
    <select id=${id("category")} value=${category} onChange=${(e) => setCategory(e.target.value)}>
      ${CATEGORIES.map((c) => html`<option value=${c}>${t("cat_" + c)}</option>`)}</select>
    <label for=${id("body")}>${t("cp_body")}</label>
    <textarea id=${id("body")} rows="3" required maxlength="4000" value=${body}
      onInput=${(e) => setBody(e.target.value)}></textarea>
    <label for=${id("named")}>${t("cp_named")}</label>
    <input id=${id("named")} inputmode="numeric" maxlength="40" value=${named}
      onInput=${(e) => setNamed(e.target.value)} />
    <p class="buttons"><button class="primary" type="submit">${t("cp_save")}</button></p>
    <p id=${id("status")} class=${`status ${status.ok ? "" : "bad"}`} role="status">${status.text}</p>
  </form>`;
}

// Recordings, newest first, each with play (an <audio> on the audited endpoint, loaded only
// when asked for, so a listing plays nothing) and download.
export function Recordings({ items, clients, showClient = true }) {
  const [playing, setPlaying] = useState(null);
  const [status, setStatus] = useState("");
  const heads = ["started", ...(showClient ? ["client"] : []), "call_col", "rec_by", "actions"];
  const play = (id) => { setStatus(""); setPlaying(id); };
  return html`<table class="cards" id="recordings"><thead><tr>${heads.map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
    <tbody>${items.length ? items.map((r) => html`<tr key=${r.id} data-id=${r.id} data-client=${r.client}>
      <td data-label=${t("started")}>${time(r.started_at, true, ((clients || {})[r.client] || {}).timezone)}</td>
      ${showClient ? html`<td data-label=${t("client")}>${clientName(clients, r.client)}</td>` : ""}
      <td data-label=${t("call_col")} class="data">${r.linkedid}</td>
      <td data-label=${t("rec_by")}>${t("rec_reason_" + r.reason)}${r.requested_by ? html` · <span class="data">${r.requested_by}</span>` : ""}</td>
      <td data-label=${t("actions")}><div class="rec-actions"><div class="rowactions">
        <button type="button" class="play" aria-pressed=${String(playing === r.id)}
          onClick=${() => play(r.id)}>${t("play")}</button>
        <a class="download" href=${`/api/recordings/${r.id}/audio?download=1`}>${t("download")}</a></div>
        ${playing === r.id ? html`<audio id=${`audio-${r.id}`} controls autoplay preload="metadata"
          aria-label=${t("rec_playing", { id: r.id })} src=${`/api/recordings/${r.id}/audio`}
          onError=${() => setStatus(t("rec_missing"))}></audio>` : ""}</div></td></tr>`)
      : html`<tr><td colspan=${heads.length} class="empty">${t("none")}</td></tr>`}</tbody></table>
    <p class="muted">${t("rec_audited")}</p>
    <p class="status bad" id="recordings-status" role="alert">${status}</p>`;
}
