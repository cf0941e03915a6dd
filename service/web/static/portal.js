import { api, el, header, live, me, outcome, replace, seconds, t, table, time, debounce }
  from "/static/app.js";

const user = await me();
header(user, "portal");
const missedOnly = document.getElementById("missed-only");

async function done(id, button) {
  button.disabled = true;
  try {
    await api(`/api/obligations/${id}/done`, { body: {} });
    refresh();
  } catch (error) {
    document.getElementById("status").textContent = error.message;
    button.disabled = false;
  }
}

async function refresh() {
  const calls = await api(`/api/calls?limit=100&direction=inbound${missedOnly.checked ? "&missed=1" : ""}`);
  replace("calls", table(["started", "caller", "name", "outcome", "wait", "talk"], calls.items.map((c) =>
    el("tr", { "data-id": c.id }, el("td", {}, time(c.started_at)),
      el("td", {}, c.caller_e164 || t("withheld")), el("td", { class: "caller-name" }, c.caller_name || ""),
      el("td", { class: c.outcome && c.outcome !== "answered" ? "missed" : "" },
        c.ended_at ? outcome(c.outcome) : "…"),
      el("td", {}, seconds(c.wait_s)), el("td", {}, seconds(c.talk_s))))));
  const owed = await api("/api/obligations?state=open,fulfilled,expired");
  replace("obligations", table(["number", "state", "due", ""], owed.items.map((o) =>
    el("tr", { "data-id": o.id }, el("td", {}, o.caller_number || o.caller_e164 || ""),
      el("td", {}, t(o.state) + (o.fulfilment ? ` (${o.fulfilment})` : "")), el("td", {}, time(o.due_at)),
      el("td", {}, o.state === "open" ? el("button", { on: { click: (e) => done(o.id, e.target) } },
        t("done")) : "")))));
  const messages = await api("/api/messages?limit=50");
  replace("messages", table(["started", "caller", "disposition", "message"], messages.items.map((m) =>
    el("tr", {}, el("td", {}, time(m.created_at)), el("td", {}, m.caller_name || m.caller_number || ""),
      el("td", {}, t(m.disposition)), el("td", { class: "card" }, m.body)))));
}

missedOnly.addEventListener("change", refresh);
live(debounce(refresh, 200));
refresh();
