// The supervisor's page of reconciliation differences: GET /api/reconcile every 15 s.
// A difference's times are shown in its call's client's time zone; a PBX's passes (no
// client) in the answering company's (company_timezone); the zone is always written.
const formats = {};
let company = "Asia/Tokyo";  // the service's company_timezone, from the API
function when(iso, zone) {
  if (!iso) return "—";
  const key = zone || company;
  formats[key] ||= new Intl.DateTimeFormat("ja-JP", { timeZone: key, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short" });
  return formats[key].format(new Date(iso));
}

import { api } from "/static/app.js";

function row(cells) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    if (text instanceof Node) td.append(text);
    else td.textContent = text === null || text === undefined ? "—" : String(text);
    tr.append(td);
  }
  return tr;
}

// A difference looked at: resolved with what was done (required, kept with who and when);
// it then no longer raises /healthz's alert.  Resolved ones say by whom and why.
function resolution(d, index) {
  if (d.resolved_at) {
    const done = document.createElement("span");
    done.className = "resolved";
    done.textContent = `解決済み resolved: ${d.resolved_by} ${when(d.resolved_at, d.timezone)} — ${d.resolved_note}`;
    return done;
  }
  const form = document.createElement("form");
  form.className = "resolve";
  const input = document.createElement("input");
  input.id = `note-${index}`;
  input.required = true;
  input.setAttribute("aria-label", "対応内容 / what was done");
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "解決済みにする / Resolve";
  const said = document.createElement("span");
  said.className = "said";
  said.setAttribute("role", "status");
  form.append(input, button, said);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/api/reconcile/resolve", { body: { pbx_id: d.pbx_id, kind: d.kind,
        linkedid: d.linkedid, note: input.value } });
      input.value = "";
      await refresh();
    } catch (error) {
      said.textContent = error.status === 409 ? "すでに解決済み / already resolved"
        : "保存できませんでした / not saved";
    }
  });
  return form;
}

async function refresh() {
  const response = await fetch("/api/reconcile", { credentials: "same-origin" });
  if (response.status === 401) {
    location.href = "/login";
    return;
  }
  const { state, differences, company_timezone: zone } = await response.json();
  company = zone || company;
  const summary = document.getElementById("summary");
  summary.textContent = !state.running
    ? "照合は動いていません (reconcile_source が未設定) / reconciliation is not running"
    : `差異 ${state.differences} 件、未確定の通話 ${state.unknown_calls} 件 / ` +
      `${state.differences} differences, ${state.unknown_calls} calls still unknown`;
  summary.className = state.ok ? "" : "bad";
  const pbxs = document.querySelector("#pbxs tbody");
  pbxs.replaceChildren(...Object.entries(state.pbx).map(([id, p]) => row([
    id, when(p.last_pass), p.calls_checked, p.settled, p.added,
    Object.entries(p.differences).map(([k, n]) => `${k}: ${n}`).join(", ") || "0", p.error])));
  const list = document.querySelector("#differences tbody");
  // A note being typed is not wiped by the 15-second refresh.
  if ([...list.querySelectorAll("input")].some((input) => input.value)) return;
  list.replaceChildren(...differences.map((d, i) => row([
    d.pbx_id, d.client, d.kind, d.linkedid, when(d.started_at, d.timezone), d.detail,
    when(d.first_seen, d.timezone), resolution(d, i)])));
}

refresh();
setInterval(refresh, 15000);
