import { api, el, header, live, me, outcome, replace, seconds, t, table, time }
  from "/static/app.js";

const user = await me();
header(user, "operator");
replace("call", el("p", { class: "muted" }, t("no_call")));
let current = null;

async function show(pbx, linkedid) {
  const pop = await api(`/api/screen?pbx=${encodeURIComponent(pbx)}&linkedid=${encodeURIComponent(linkedid)}`);
  current = pop;
  const call = pop.call;
  const client = pop.client || {};
  replace("call",
    el("h3", { id: "client-name" }, client.name || call.client || "?"),
    el("p", {}, `${t("caller")}: `, el("strong", { id: "caller-name" }, call.caller_name || ""),
      " ", call.caller_e164 || t("withheld")),
    call.escalated ? el("p", { class: "alert", id: "escalation" },
      `${t("escalation")}: ${t(call.escalation_reason || "other")}`) : "",
    pop.open_callbacks.length ? el("p", { class: "warn", id: "open-callbacks" },
      `${t("obligations")}: ${pop.open_callbacks.length}`) : "",
    el("h4", {}, t("greeting")), el("p", { class: "card", id: "greeting" }, client.greeting_script || ""),
    el("h4", {}, t("notes")), el("p", { class: "card" }, client.notes || ""),
    el("p", {}, ["complaint", "complaint_naming_operator", "payment_dispute", "other"].map((reason) =>
      el("button", { on: { click: () => escalate(reason) } }, `${t("escalate")}: ${t(reason)}`))));
  replace("history", table(["started", "outcome", "by"], pop.history.map((h) =>
    el("tr", {}, el("td", {}, time(h.started_at)),
      el("td", {}, h.direction === "outbound" ? `→ ${h.dial_result}` : outcome(h.outcome)),
      el("td", {}, h.answered_by || h.placed_by || "")))));
  form(call);
}

async function escalate(reason) {
  const status = document.getElementById("status");
  try {
    const result = await api("/api/escalations", { body: { reason } });
    status.textContent = result.moved ? `${t("escalate")}: ${t(reason)}` : result.detail;
  } catch (error) {
    status.textContent = error.message;
  }
}

function form(call) {
  const body = el("textarea", { id: "body", rows: "5" });
  const disposition = el("select", { id: "disposition" },
    ["callback_requested", "urgent", "info_only"].map((d) => el("option", { value: d }, t(d))));
  replace("message-form",
    el("label", {}, t("disposition")), disposition, el("label", {}, t("message")), body,
    el("button", { class: "primary", type: "submit" }, t("send")));
  document.getElementById("message-form").onsubmit = async (event) => {
    event.preventDefault();
    const status = document.getElementById("status");
    try {
      await api("/api/messages", { body: { client: call.client, disposition: disposition.value,
        body: body.value, caller_number: call.caller_number, caller_name: call.caller_name,
        pbx: call.pbx_id, linkedid: call.linkedid } });
      status.textContent = t("sent");
      body.value = "";
    } catch (error) {
      status.textContent = error.message;
    }
  };
}

live((kind, event) => {
  if (kind === "ring" && event.agent === user.extension) show(event.pbx, event.linkedid);
});
