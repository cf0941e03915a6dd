// The client's portal: its own name, its calls newest first (date range, outcome, missed
// only), the call backs it owes (mark done), its messages, its monthly report and a CSV.
// A client user sees only its client: the server filters in SQL; nothing here is offered that
// the role cannot use.
import {
  api, clientName, dayRange, debounce, h, header, html, live, me, outcome, problem, render, seconds, t,
  time, useEffect, useState, word,
} from "/static/app.js";
import { Recordings } from "/static/callflows.js";

const user = await me();
// Every time on the portal in its client's zone (the client reads its own calls).
const zoneOf = (code) => (clients[code] || {}).timezone;
const OUTCOMES = ["answered", "abandoned", "short_abandon", "ivr_hangup", "timeout", "no_agents",
  "queue_full", "exit_key", "after_hours", "forwarded", "unknown"];

function query(filters) {
  const q = new URLSearchParams({ direction: "inbound", limit: "100" });
  for (const [key, value] of Object.entries(dayRange(filters.from, filters.to))) q.set(key, value);
  if (filters.outcome) q.set("outcome", filters.outcome);
  if (filters.missed) q.set("missed", "1");
  return q;
}

function Filters({ filters, setFilters }) {
  const set = (key) => (e) => setFilters({ ...filters, [key]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const csv = new URLSearchParams();
  for (const [key, value] of Object.entries(dayRange(filters.from, filters.to))) csv.set(key, value);
  return html`<div class="filters" role="search">
    <div><label for="from">${t("from")}</label><input type="date" id="from" value=${filters.from} onChange=${set("from")} /></div>
    <div><label for="to">${t("to")}</label><input type="date" id="to" value=${filters.to} onChange=${set("to")} /></div>
    <div><label for="outcome">${t("outcome")}</label><select id="outcome" value=${filters.outcome} onChange=${set("outcome")}>
      <option value="">${t("any_outcome")}</option>${OUTCOMES.map((o) => html`<option value=${o}>${outcome(o)}</option>`)}</select></div>
    <label class="inline" for="missed-only"><input type="checkbox" id="missed-only" checked=${filters.missed} onChange=${set("missed")} />
      <span id="l-missed">${t("missed_only")}</span></label>
    <a id="export" href=${`/api/calls.csv?${csv}`}>${t("export")}</a>
  </div>`;
}

function Calls({ calls }) {
  const heads = ["started", "caller", "name", "outcome", "wait", "talk"];
  return html`<table class="cards" id="calls-table"><thead><tr>${heads.map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
    <tbody>${calls.length ? calls.map((c) => html`<tr key=${c.id} data-id=${c.id} data-started=${c.started_at}>
      <td data-label=${t("started")}>${time(c.started_at, true, zoneOf(c.client))}</td>
      <td data-label=${t("caller")} class="data">${c.caller_e164_display || t("withheld")}</td>
      <td data-label=${t("name")} class="caller-name data">${c.caller_name || ""}</td>
      <td data-label=${t("outcome")} class=${c.outcome && c.outcome !== "answered" ? "missed" : ""}>${c.ended_at ? outcome(c.outcome) : t("in_progress")}</td>
      <td data-label=${t("wait")}>${seconds(c.wait_s)}</td><td data-label=${t("talk")}>${seconds(c.talk_s)}</td></tr>`)
      : html`<tr><td colspan="6" class="empty">${t("none")}</td></tr>`}</tbody></table>`;
}

function Obligations({ items, reload }) {
  const [status, setStatus] = useState("");
  const done = async (id) => {
    try {
      await api(`/api/obligations/${id}/done`, { body: {} });
      setStatus(t("marked_done"));
      reload();
    } catch (error) {
      setStatus(error.status === 409 ? t("not_open") : problem(error));
    }
  };
  const heads = ["number", "missed_n", "state", "due", "actions"];
  return html`<table class="cards" id="obligations"><thead><tr>${heads.map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
    <tbody>${items.length ? items.map((o) => html`<tr key=${o.id} data-id=${o.id}>
      <td data-label=${t("number")} class="data">${o.caller_e164_display || o.caller_number || t("withheld")}</td>
      <td data-label=${t("missed_n")}>${o.calls}</td>
      <td data-label=${t("state")}>${word(o.state)}${o.fulfilment ? ` (${word(o.fulfilment)})` : ""}</td>
      <td data-label=${t("due")}>${time(o.due_at, true, zoneOf(o.client))}</td>
      <td data-label=${t("actions")}>${o.state === "open" ? html`<button type="button" class="done" onClick=${() => done(o.id)}>${t("done")}</button>` : ""}</td></tr>`)
      : html`<tr><td colspan="5" class="empty">${t("none")}</td></tr>`}</tbody></table>
    <p class="status" id="status" role="status">${status}</p>`;
}

function Messages({ items }) {
  const heads = ["started", "caller", "disposition", "message"];
  return html`<table class="cards" id="messages"><thead><tr>${heads.map((k) => html`<th scope="col">${t(k)}</th>`)}</tr></thead>
    <tbody>${items.length ? items.map((m) => html`<tr key=${m.id}>
      <td data-label=${t("started")}>${time(m.created_at, true, zoneOf(m.client))}</td>
      <td data-label=${t("caller")} class="data">${m.caller_name || m.caller_number || ""}</td>
      <td data-label=${t("disposition")}>${word(m.disposition)}</td>
      <td data-label=${t("message")} class="card data">${m.body}</td></tr>`)
      : html`<tr><td colspan="4" class="empty">${t("none")}</td></tr>`}</tbody></table>`;
}

// All a client sees of complaints: how many, in the dates shown (or all time).
function ComplaintCount({ count, filters }) {
  if (count === null) return null;
  return html`<section aria-labelledby="h-complaint-count" id="p-complaint-count">
    <h2 id="h-complaint-count">${t("cp_count_title")}</h2>
    <p class="bigfigure"><b id="complaint-count" data-count=${count}>${t("cp_count_n", { n: count })}</b>
      <span class="muted"> ${filters.from || filters.to ? t("cp_count_range") : t("cp_count_all")}</span></p></section>`;
}

function App() {
  const [filters, setFilters] = useState({ from: "", to: "", outcome: "", missed: false });
  const [data, setData] = useState(null);
  const [error, setError] = useState("");
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let stale = false;
    (async () => {
      try {
        const range = new URLSearchParams();
        // The same days as the calls, in the reader's zone.
        for (const [key, value] of Object.entries(dayRange(filters.from, filters.to))) range.set(key, value);
        const [calls, owed, messages, recordings, complaints] = await Promise.all([
          api(`/api/calls?${query(filters)}`),
          api("/api/obligations?state=open,fulfilled,expired&limit=100"),
          api("/api/messages?limit=50"),
          api("/api/recordings?limit=50"),
          // Only a client user has one client to count; staff see complaints on their desk.
          user.client ? api(`/api/complaints/count?${range}`) : Promise.resolve(null)]);
        if (!stale) {
          setData({ calls: calls.items, owed: owed.items, messages: messages.items,
            recordings: recordings.items, complaints: complaints ? complaints.count : null });
          setError("");
        }
      } catch (e) {
        if (!stale) setError(problem(e));
      }
    })();
    return () => { stale = true; };
  }, [filters, version]);
  useEffect(() => {
    const soon = debounce(() => setVersion((v) => v + 1), 300);
    const source = live(() => soon());
    return () => source.close();
  }, []);
  const reload = () => setVersion((v) => v + 1);
  return html`<main>
    <p class="status bad" role="alert">${error}</p>
    <section aria-labelledby="h-calls"><h2 id="h-calls">${t("calls")}</h2>
      <${Filters} filters=${filters} setFilters=${setFilters} />
      <div id="calls">${data ? html`<${Calls} calls=${data.calls} />` : t("loading")}</div></section>
    <section aria-labelledby="h-obligations"><h2 id="h-obligations">${t("obligations")}</h2>
      ${data ? html`<${Obligations} items=${data.owed} reload=${reload} />` : t("loading")}</section>
    <section aria-labelledby="h-messages"><h2 id="h-messages">${t("messages")}</h2>
      ${data ? html`<${Messages} items=${data.messages} />` : t("loading")}
      <p><a href="/report" id="report-link">${t("report")}</a></p></section>
    ${data ? html`<${ComplaintCount} count=${data.complaints} filters=${filters} />` : ""}
    <section aria-labelledby="h-recordings"><h2 id="h-recordings">${t("recordings")}</h2>
      ${data ? html`<${Recordings} items=${data.recordings} clients=${clients} showClient=${!user.client} />` : t("loading")}</section>
  </main>`;
}

const clients = await api("/api/clients").then((r) => Object.fromEntries(r.items.map((c) => [c.code, c]))).catch(() => ({}));
// A client user's page is named after its client, in the page's language.
header(user, "portal", user.client ? clientName(clients, user.client) : "");
render(h(App, {}), document.getElementById("app"));
