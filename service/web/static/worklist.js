import { api, el, header, me, replace, t, table, time } from "/static/app.js";

const user = await me();
header(user, "worklist");

async function call(id, button) {
  const status = document.getElementById("status");
  button.disabled = true;
  try {
    const result = await api(`/api/obligations/${id}/call`, { body: {} });
    status.textContent = result.reason;
  } catch (error) {
    status.textContent = error.data && error.data.reason ? error.data.reason : error.message;
  } finally {
    button.disabled = false;
  }
}

async function refresh() {
  const { items } = await api("/api/obligations?state=open");
  const now = Date.now();
  replace("obligations", table(["due", "client", "number", "reason", "attempts", ""], items.map((o) =>
    el("tr", { "data-id": o.id }, el("td", { class: new Date(o.due_at) < now ? "bad" : "" },
      time(o.due_at)), el("td", {}, o.client), el("td", {}, o.caller_number || o.caller_e164),
      el("td", {}, t(o.reason === "message" ? "callback_requested" : "missed")),
      el("td", {}, o.attempts),
      el("td", {}, el("button", { on: { click: (e) => call(o.id, e.target) } }, t("call")))))));
}

setInterval(refresh, 10000);
refresh();
