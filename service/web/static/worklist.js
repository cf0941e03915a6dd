// The call-back worklist: who to call back, for which client, how many missed calls, by when;
// whether 発信 is allowed now (calling hours, shown before any click, with when it opens);
// the result of a click in the row that was clicked; done / cancel with a reason; a call back
// scheduled for a time (予約: typed in the client's time zone, refused with the reason and the
// earliest allowed time when the policy forbids it; pending ones listed with a cancel); a
// message to the callee by e-mail or fax (held by the server outside the callee's hours).
// Every time is shown in the row's client's zone.  Updated live from the stream (every change
// of a call back is notified), not polled.
import {
  api, clientName, debounce, h, header, html, inputValue, lang, live, me, nowMs, problem, render,
  syncClock, t, time, useEffect, useState, useTick, zonedIso,
} from "/static/app.js";

const user = await me();
header(user, "worklist");
const canClose = user.role === "admin" || user.role === "supervisor";

// The zone as people of the page's language call it (日本標準時, Eastern Daylight Time), at
// the instant shown (daylight saving changes the name).
function zoneName(zone, iso) {
  const at = iso ? new Date(iso) : new Date(nowMs());
  const part = new Intl.DateTimeFormat(lang === "ja" ? "ja-JP" : "en-GB", { timeZone: zone, timeZoneName: "long" })
    .formatToParts(at).find((p) => p.type === "timeZoneName");
  return part ? part.value : zone;
}

function hoursText(o) {
  const calling = o.calling;
  const zone = o.timezone;
  // The whole outbound policy first (hours, contact limits, do-not-call), then the hours.
  if (o.contact_allowed === false && o.refusal_rule !== "calling_hours") {
    const why = t("why_" + o.refusal_rule);
    return o.opens_at ? t("blocked_until", { why, t: time(o.opens_at, true, zone), z: zoneName(zone, o.opens_at) })
      : t("blocked_never", { why });
  }
  if (!calling) return "";
  if (calling.open) return t("open_now", { w: calling.window });
  return calling.opens_at ? t("closed_until", { t: time(calling.opens_at, true, zone), w: calling.window })
    : t("closed_unknown", { w: calling.window });
}

function callResult(result, zone) {
  if (result.code === "dialling") return { ok: true, text: t("dialling") };
  if (result.code === "outside_calling_hours") {
    const c = result.calling || {};
    return { ok: false, text: t("refused_hours", { w: c.window || "", t: c.opens_at ? time(c.opens_at, true, zone) : "–" }) };
  }
  if (result.code === "no_pbx_link") return { ok: false, text: t("no_pbx_link") };
  if (result.code === "do_not_call") return { ok: false, text: t("refused_dnc") };
  if (result.code === "contact_limit") return { ok: false, text: t("refused_limit") };
  return { ok: false, text: t("call_failed") };
}

function scheduleRefusal(data, zone) {
  if (data.code === "do_not_call") return t("sched_dnc");
  const key = data.code === "outside_calling_hours" ? "sched_hours" : "sched_limit";
  return t(key, { t: data.opens_at ? time(data.opens_at, true, zone) : "–", z: zoneName(zone, data.opens_at) });
}

function Scheduling({ o, onChanged, setResult }) {
  const zone = o.timezone || "Asia/Tokyo";
  // Prefilled with when the call back opens, if the policy forbids now.
  const [at, setAt] = useState(o.contact_allowed === false && o.opens_at ? inputValue(o.opens_at, zone) : "");
  const [suggest, setSuggest] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    if (!at) { setResult({ ok: false, text: t("sched_pick") }); return; }
    setBusy(true);
    try {
      const done = await api(`/api/obligations/${o.id}/schedule`, { body: { at: zonedIso(at, zone) } });
      setResult({ ok: true, text: t("scheduled_ok", { t: time(done.run_at, true, zone), z: zoneName(zone, done.run_at) }) });
      setSuggest(null);
      onChanged();
    } catch (error) {
      if (error.status === 409 && error.data && error.data.code) {
        setResult({ ok: false, text: scheduleRefusal(error.data, zone) });
        setSuggest(error.data.opens_at || null);
      } else if (error.status === 400 && error.data && /past/.test(error.data.error || "")) {
        setResult({ ok: false, text: t("sched_past") });
      } else {
        setResult({ ok: false, text: error.status === 409 ? t("not_open") : problem(error) });
      }
    } finally {
      setBusy(false);
    }
  };
  const inputId = `at-${o.id}`;
  return html`<form class="rowform schedule" onSubmit=${submit}>
    <label class="inline" for=${inputId}>${t("schedule_at", { z: zoneName(zone) })}</label>
    <input id=${inputId} type="datetime-local" value=${at} required onInput=${(e) => setAt(e.target.value)} />
    <button type="submit" class="primary" disabled=${busy}>${t("schedule_save")}</button>
    ${suggest ? html`<button type="button" class="use-time" onClick=${() => { setAt(inputValue(suggest, zone)); setSuggest(null); }}>
      ${t("use_time", { t: time(suggest, true, zone) })}</button>` : ""}
  </form>`;
}

function Scheduled({ o, onChanged, setResult }) {
  const zone = o.timezone || "Asia/Tokyo";
  const cancel = async (id) => {
    try {
      await api(`/api/scheduled/${id}/cancel`, { body: {} });
      setResult({ ok: true, text: t("scheduled_cancelled") });
      onChanged();
    } catch (error) {
      setResult({ ok: false, text: error.status === 409 ? t("scheduled_gone") : problem(error) });
      onChanged();
    }
  };
  if (!o.scheduled || !o.scheduled.length) return "";
  return html`<ul class="scheduled">${o.scheduled.map((s) => html`<li key=${s.id} data-scheduled=${s.id}>
    <span class="badge">${t("schedule")}</span> ${t("scheduled_for", { t: time(s.run_at, true, zone), z: zoneName(zone, s.run_at), op: s.operator })}
    ${s.last_reason ? html` <span class="muted">${t("scheduled_moved", { why: s.last_reason })}</span>` : ""}
    <button type="button" class="cancel-scheduled" onClick=${() => cancel(s.id)}>${t("cancel_scheduled")}</button>
  </li>`)}</ul>`;
}

// A message to the callee (e-mail, or fax to the callee's number): the server checks the
// callee's hours and the do-not-call list, and holds it until the window opens.
function Messaging({ o, setResult, onSent }) {
  const zone = o.timezone || "Asia/Tokyo";
  const [channel, setChannel] = useState("email");
  const [email, setEmail] = useState("");
  const [subject, setSubject] = useState("");
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const send = async (event) => {
    event.preventDefault();
    setBusy(true);
    try {
      const sent = await api("/api/callee-messages", {
        body: { obligation: o.id, channel, email: channel === "email" ? email : "", subject, body },
      });
      setResult(sent.state === "held"
        ? { ok: true, text: t("msg_held", { t: time(sent.not_before, true, zone), z: zoneName(zone, sent.not_before) }) }
        : { ok: true, text: t("msg_sent") });
      onSent();
    } catch (error) {
      const data = error.data || {};
      if (error.status === 409 && data.rule) {
        setResult({ ok: false, text: t("msg_refused", { why: t("why_" + data.rule) }) });
      } else if (error.status === 400 && /fax gateway/.test(data.error || "")) {
        setResult({ ok: false, text: t("msg_no_fax") });
      } else {
        setResult({ ok: false, text: error.status === 400 && data.error ? data.error : problem(error) });
      }
    } finally {
      setBusy(false);
    }
  };
  const id = (name) => `${name}-${o.id}`;
  return html`<form class="rowform message" onSubmit=${send}>
    <label class="inline" for=${id("channel")}>${t("msg_channel")}</label>
    <select id=${id("channel")} value=${channel} onChange=${(e) => setChannel(e.target.value)}>
      <option value="email">${t("msg_email")}</option><option value="fax">${t("msg_fax")}</option></select>
    ${channel === "email" ? html`<label class="inline" for=${id("email")}>${t("msg_address")}</label>
      <input id=${id("email")} type="email" required value=${email} onInput=${(e) => setEmail(e.target.value)} />` : ""}
    <label class="inline" for=${id("subject")}>${t("msg_subject")}</label>
    <input id=${id("subject")} required maxlength="200" value=${subject} onInput=${(e) => setSubject(e.target.value)} />
    <label class="inline" for=${id("body")}>${t("msg_body")}</label>
    <textarea id=${id("body")} required maxlength="10000" rows="3" value=${body} onInput=${(e) => setBody(e.target.value)}></textarea>
    <button type="submit" class="primary" disabled=${busy}>${t("msg_send")}</button>
  </form>`;
}

function Row({ o, clients, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const [closing, setClosing] = useState(null);  // "done" | "cancel" | "schedule" | "message"
  const [note, setNote] = useState("");
  const zone = o.timezone || "Asia/Tokyo";
  const overdue = o.due_at && new Date(o.due_at).getTime() < Date.now();
  // The outbound policy (hours, contact limits, do-not-call) as the server judged it now.
  const closed = (o.calling && !o.calling.open) || o.contact_allowed === false;
  const hoursId = `hours-${o.id}`;
  const call = async () => {
    setBusy(true);
    try {
      setResult(callResult(await api(`/api/obligations/${o.id}/call`, { body: {} }), zone));
    } catch (error) {
      setResult(error.status === 409 && error.data.code ? callResult(error.data, zone)
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
    <td data-label=${t("due")}>${overdue ? html`<span class="badge overdue">${t("overdue")}</span> ` : ""}${time(o.due_at, true, zone)}</td>
    <td data-label=${t("client")}>${clientName(clients, o.client)}</td>
    <td data-label=${t("name")} class="caller-name data">${o.caller_name || ""}</td>
    <td data-label=${t("number")} class="data">${o.caller_e164_display || o.caller_number || ""}</td>
    <td data-label=${t("missed_n")}>${o.calls}</td>
    <td data-label=${t("attempts")}>${o.attempts}</td>
    <td data-label=${t("calling_hours")} id=${hoursId} class=${`hours ${closed ? "closed" : "open"}`}>${hoursText(o)}</td>
    <td data-label=${t("actions")}>
      <div class="rowactions">
        <button type="button" class="primary call" disabled=${busy || closed || !o.caller_e164}
          aria-describedby=${hoursId} onClick=${call}>${t("call")}</button>
        ${o.caller_e164 && user.role !== "client" ? html`<button type="button" class="schedule"
          aria-expanded=${closing === "schedule"} onClick=${() => setClosing(closing === "schedule" ? null : "schedule")}>${t("schedule")}</button>` : ""}
        ${o.caller_e164 && user.role !== "client" ? html`<button type="button" class="message"
          aria-expanded=${closing === "message"} onClick=${() => setClosing(closing === "message" ? null : "message")}>${t("msg")}</button>` : ""}
        ${canClose ? html`<button type="button" class="done" onClick=${() => setClosing("done")}>${t("done")}</button>
          <button type="button" class="cancel danger" onClick=${() => setClosing("cancel")}>${t("cancel")}</button>` : ""}
      </div>
      <${Scheduled} o=${o} onChanged=${onChanged} setResult=${setResult} />
      ${closing === "schedule" ? html`<${Scheduling} o=${o} onChanged=${onChanged} setResult=${setResult} />` : ""}
      ${closing === "message" ? html`<${Messaging} o=${o} setResult=${setResult} onSent=${() => setClosing(null)} />` : ""}
      ${closing && closing !== "schedule" && closing !== "message" ? html`<form class="rowform" onSubmit=${close}>
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
  const [reload, setReload] = useState(() => () => {});
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
    setReload(() => soon);  // a row that scheduled or cancelled asks again
    const source = live((kind) => { if (kind === "obligation" || kind === "resync") soon(); });
    load();
    return () => { source.close(); clearTimeout(reopen); };
  }, []);
  const heads = ["due", "client", "name", "number", "missed_n", "attempts", "calling_hours", "actions"];
  return html`<main><section aria-labelledby="h-obligations"><h2 id="h-obligations">${t("obligations")}</h2>
    <p class="status bad" role="alert">${error}</p>
    ${items === null ? html`<p class="muted">${t("loading")}</p>` : html`<table class="cards" id="obligations">
      <thead><tr>${heads.map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
      <tbody>${items.length ? items.map((o) => html`<${Row} key=${o.id} o=${o} clients=${clients} onChanged=${reload} />`)
        : html`<tr><td colspan="8" class="empty">${t("none")}</td></tr>`}</tbody></table>`}
  </section></main>`;
}

const clients = await api("/api/clients").then((r) => Object.fromEntries(r.items.map((c) => [c.code, c]))).catch(() => ({}));
render(h(App, { clients }), document.getElementById("app"));
