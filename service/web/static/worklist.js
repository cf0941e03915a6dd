// The call-back worklist: who to call back, for which client, how many missed calls, by when;
// whether 発信 is allowed now (calling hours, shown before any click, with when it opens);
// the result of a click in the row that was clicked; done / cancel with a reason.  Updated
// live from the stream (every change of a call back is notified), not polled.
import {
  api, clientName, debounce, h, header, html, live, me, problem, render, syncClock, t,
  time, useEffect, useState, useTick,
} from "/static/app.js";

const user = await me();
header(user, "worklist");
const canClose = user.role === "admin" || user.role === "supervisor";

function hoursText(calling) {
  if (!calling) return "";
  if (calling.open) return t("open_now", { w: calling.window });
  return calling.opens_at ? t("closed_until", { t: time(calling.opens_at), w: calling.window })
    : t("closed_unknown", { w: calling.window });
}

function callResult(result) {
  if (result.code === "dialling") return { ok: true, text: t("dialling") };
  if (result.code === "outside_calling_hours") {
    const c = result.calling || {};
    return { ok: false, text: t("refused_hours", { w: c.window || "", t: c.opens_at ? time(c.opens_at) : "–" }) };
  }
  if (result.code === "no_pbx_link") return { ok: false, text: t("no_pbx_link") };
  if (result.code === "do_not_call") return { ok: false, text: t("refused_dnc") };
  if (result.code === "contact_limit") return { ok: false, text: t("refused_limit") };
  return { ok: false, text: t("call_failed") };
}

function Row({ o, clients, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const [closing, setClosing] = useState(null);  // "done" | "cancel"
  const [note, setNote] = useState("");
  const overdue = o.due_at && new Date(o.due_at).getTime() < Date.now();
  // The outbound policy (hours, contact limits, do-not-call) as the server judged it now.
  const closed = (o.calling && !o.calling.open) || o.contact_allowed === false;
  const hoursId = `hours-${o.id}`;
  const call = async () => {
    setBusy(true);
    try {
      setResult(callResult(await api(`/api/obligations/${o.id}/call`, { body: {} })));
    } catch (error) {
      setResult(error.status === 409 && error.data.code ? callResult(error.data)
        : { ok: false, text: error.status === 409 ? t("not_open") : problem(error) });
    } finally {
      setBusy(false);
    }
  };
  const close = async (event) => {
    event.preventDefault();
    try {
      await api(`/api/obligations/${o.id}/${closing}`, { body: { note } });
      setResult({ ok: true, text: closing === "done" ? t("marked_done") : t("cancelled_ok") });
      setClosing(null);
      onChanged();
    } catch (error) {
      setResult({ ok: false, text: error.status === 409 ? t("not_open") : problem(error) });
    }
  };
  return html`<tr data-id=${o.id} class=${overdue ? "overdue" : ""}>
    <td data-label=${t("due")}>${overdue ? html`<span class="badge overdue">${t("overdue")}</span> ` : ""}${time(o.due_at)}</td>
    <td data-label=${t("client")}>${clientName(clients, o.client)}</td>
    <td data-label=${t("name")} class="caller-name data">${o.caller_name || ""}</td>
    <td data-label=${t("number")} class="data">${o.caller_e164_display || o.caller_number || ""}</td>
    <td data-label=${t("missed_n")}>${o.calls}</td>
    <td data-label=${t("attempts")}>${o.attempts}</td>
    <td data-label=${t("calling_hours")} id=${hoursId} class=${`hours ${closed ? "closed" : "open"}`}>${hoursText(o.calling)}</td>
    <td data-label=${t("actions")}>
      <div class="rowactions">
        <button type="button" class="primary call" disabled=${busy || closed || !o.caller_e164}
          aria-describedby=${hoursId} onClick=${call}>${t("call")}</button>
        ${canClose ? html`<button type="button" class="done" onClick=${() => setClosing("done")}>${t("done")}</button>
          <button type="button" class="cancel danger" onClick=${() => setClosing("cancel")}>${t("cancel")}</button>` : ""}
      </div>
      ${closing ? html`<form class="rowform" onSubmit=${close}>
        <label class="inline" for=${`note-${o.id}`}>${closing === "cancel" ? t("cancel_reason") : t("done_note")}</label>
        <input id=${`note-${o.id}`} value=${note} required=${closing === "cancel"} onInput=${(e) => setNote(e.target.value)} />
        <button type="submit" class="primary">${t("save")}</button>
        <button type="button" onClick=${() => setClosing(null)}>${t("cancel_action")}</button></form>` : ""}
      ${result ? html`<p class=${`result ${result.ok ? "ok" : "bad"}`} role="status">${result.text}</p>` : ""}
    </td></tr>`;
}

function App({ clients }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState("");
  useTick(30000);
  useEffect(() => {
    let reopen = null;
    const load = async () => {
      try {
        const data = await api("/api/obligations?state=open");
        syncClock(data.now);
        setItems(data.items);
        setError("");
        // When the calling hours of a row open, ask again (the server decides, by its clock).
        const next = data.items.map((o) => o.calling && !o.calling.open && o.calling.opens_at)
          .filter(Boolean).map((iso) => new Date(iso).getTime() - new Date(data.now).getTime());
        clearTimeout(reopen);
        if (next.length) reopen = setTimeout(load, Math.max(1000, Math.min(...next) + 1000));
      } catch (e) {
        setError(problem(e));
      }
    };
    const soon = debounce(load, 300);
    const source = live((kind) => { if (kind === "obligation" || kind === "resync") soon(); });
    load();
    return () => { source.close(); clearTimeout(reopen); };
  }, []);
  const heads = ["due", "client", "name", "number", "missed_n", "attempts", "calling_hours", "actions"];
  return html`<main><section aria-labelledby="h-obligations"><h2 id="h-obligations">${t("obligations")}</h2>
    <p class="status bad" role="alert">${error}</p>
    ${items === null ? html`<p class="muted">${t("loading")}</p>` : html`<table class="cards" id="obligations">
      <thead><tr>${heads.map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
      <tbody>${items.length ? items.map((o) => html`<${Row} key=${o.id} o=${o} clients=${clients} onChanged=${() => {}} />`)
        : html`<tr><td colspan="8" class="empty">${t("none")}</td></tr>`}</tbody></table>`}
  </section></main>`;
}

const clients = await api("/api/clients").then((r) => Object.fromEntries(r.items.map((c) => [c.code, c]))).catch(() => ({}));
render(h(App, { clients }), document.getElementById("app"));
