import { api, debounce, el, header, live, me, outcome, replace, seconds, t, table, time }
  from "/static/app.js";

const user = await me();
header(user, "wallboard");
for (const id of ["alerts", "queues", "live", "today", "operators"]) {
  document.getElementById(`h-${id}`).textContent = t(id);
}

async function spy(operator, mode, button) {
  const status = document.getElementById("status");
  button.disabled = true;
  try {
    const result = await api("/api/spy", { body: { operator, mode } });
    status.textContent = `${t(mode)} ${operator}: ${result.result}`;
  } catch (error) {
    status.textContent = `${t(mode)} ${operator}: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

function alertLine(alert) {
  const call = alert.call || {};
  if (alert.kind === "overdue_callback") {
    const o = alert.obligation;
    return el("div", { class: "alert" }, `${t("overdue_callback")} · ${o.client} · `,
      o.caller_number || o.caller_e164 || "", ` · ${t("due")} ${time(o.due_at)}`);
  }
  return el("div", { class: "alert", "data-kind": alert.kind },
    `${t(alert.kind)} · ${call.client || ""} · `, call.caller_name || "", " ",
    call.caller_e164 || t("withheld"),
    alert.kind === "escalation" ? ` · ${t(alert.reason) || alert.reason}` : "");
}

async function refresh() {
  const board = await api("/api/wallboard");
  replace("alerts", ...board.alerts.map(alertLine));
  replace("queues", table(["queue", "waiting", "longest"], board.queues.map((q) =>
    el("tr", {}, el("td", {}, q.queue), el("td", {}, q.waiting),
      el("td", {}, seconds(q.longest_wait_s))))));
  replace("live", table(["client", "caller", "name", "since", "by", ""], board.live_calls.map((c) =>
    el("tr", { "data-linkedid": c.linkedid },
      el("td", {}, c.client || ""), el("td", {}, c.caller_e164 || t("withheld")),
      el("td", { class: "caller-name" }, c.caller_name || ""), el("td", {}, time(c.started_at)),
      el("td", {}, c.answered_by || (c.escalated ? t("escalation") : "")),
      el("td", {}, c.answered_by && !c.ended_at ? ["listen", "whisper", "barge"].map((mode) =>
        el("button", { "data-mode": mode, "data-operator": c.answered_by,
          on: { click: (event) => spy(c.answered_by, mode, event.target) } }, t(mode))) : "")))));
  replace("today", table(["client", "answered", "missed", "reasons", "sl"], board.today.map((d) =>
    el("tr", {}, el("td", {}, d.client), el("td", { class: "ok" }, d.answered),
      el("td", { class: d.missed ? "missed" : "" }, d.missed),
      el("td", {}, Object.entries(d.missed_reasons).map(([k, n]) => `${outcome(k)} ${n}`).join(", ")),
      el("td", {}, d.service_level === null ? "" : `${Math.round(d.service_level * 100)}%`)))));
  replace("operators", table(["operator", "queue", "state"], board.operators.map((o) =>
    el("tr", {}, el("td", {}, o.operator), el("td", {}, o.queue),
      el("td", {}, o.paused ? `${o.status} (paused)` : o.status)))));
}

const soon = debounce(refresh, 150);
live(() => soon());
setInterval(refresh, 5000);
refresh();
