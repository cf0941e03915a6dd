// The wallboard: one screen a supervisor reads at a glance (1920x1080 wall screen, 1366x768
// laptop): today per client, queues, operators, live calls, alerts, and the PBX-link banner.
import {
  api, clientName, confirmDialog, debounce, duration, h, header, html, live, me, problem,
  render, syncClock, t, time, useEffect, useRef, useState, useTick, word,
} from "/static/app.js";

const user = await me();
header(user, "wallboard");

function queueName(board, queue) {
  const owner = board.queues.find((q) => q.queue === queue && q.client);
  if (owner) return clientName(board.clients, owner.client);
  return queue === "q-sup" ? t("supervisors") : t("unknown_queue");
}

function Chart({ day }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!window.uPlot || !box.current) return undefined;
    const hours = [...Array(24).keys()];
    const data = [hours, day.hourly_answered, day.hourly_missed];
    if (plot.current) {
      plot.current.setData(data);
      return undefined;
    }
    // Answered and missed side by side in each hour.
    const left = window.uPlot.paths.bars({ size: [0.45, 8], align: 1 });
    const right = window.uPlot.paths.bars({ size: [0.45, 8], align: -1 });
    plot.current = new window.uPlot({
      width: Math.max(120, box.current.clientWidth), height: 40, legend: { show: false },
      cursor: { show: false }, select: { show: false },
      scales: { x: { time: false, range: [-0.5, 23.5] }, y: { range: (u, min, max) => [0, Math.max(2, max)] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: "#1d6b34", fill: "#1d6b34", paths: left, points: { show: false } },
        { stroke: "#b3261e", fill: "#b3261e", paths: right, points: { show: false } }],
    }, data, box.current);
    const resize = new ResizeObserver(() => {
      if (plot.current && box.current) plot.current.setSize({ width: box.current.clientWidth, height: 40 });
    });
    resize.observe(box.current);
    return () => resize.disconnect();
  }, [day]);
  const summary = day.hourly_answered.map((n, hour) => (n || day.hourly_missed[hour]
    ? `${hour}:00 ${t("answered")} ${n} ${t("missed")} ${day.hourly_missed[hour]}` : "")).filter(Boolean).join(", ");
  return html`<div class="chart" ref=${box} role="img" aria-label=${`${t("chart_label")}: ${summary || t("none")}`}></div>`;
}

function Today({ board }) {
  if (!board.today.length) return html`<p class="muted">${t("none")}</p>`;
  return html`<div class="clients">${board.today.map((d) => {
    const below = d.service_level !== null && d.service_level < d.service_level_target;
    return html`<div class="client" data-client=${d.client} key=${d.client}>
      <h3>${clientName(board.clients, d.client)}</h3>
      <div class="figures">
        <span>${t("offered")} <b class="offered">${d.offered}</b></span>
        <span class="ok">${t("answered")} <b class="answered">${d.answered}</b></span>
        <span class=${d.missed ? "missed" : ""}>${t("missed")} <b class="missed-n">${d.missed}</b></span>
        <span class=${"sl" + (below ? " below" : "")}>${t("sl")} <b>${d.service_level === null ? "–" : `${Math.round(d.service_level * 100)}%`}</b>
          <span class="muted"> ${t("sl_within", { s: Math.round(d.service_level_s) })} · ${t("target", { p: Math.round(d.service_level_target * 100) })}${below ? ` · ${t("below_target")}` : ""}</span></span>
      </div>
      <${Chart} day=${d} />
    </div>`;
  })}</div>`;
}

function Queues({ board }) {
  return html`<table><thead><tr><th>${t("queue")}</th><th>${t("waiting")}</th><th>${t("longest")}</th></tr></thead>
    <tbody>${board.queues.length ? board.queues.map((q) => html`<tr key=${q.queue} data-queue=${q.queue}>
      <td>${q.client ? clientName(board.clients, q.client) : queueName(board, q.queue)}</td>
      <td class=${q.waiting ? "warn" : ""}>${q.waiting}</td>
      <td class="timer">${q.oldest_joined_at ? duration(q.oldest_joined_at) : "–"}</td></tr>`)
      : html`<tr><td colspan="3" class="empty">${t("none")}</td></tr>`}</tbody></table>`;
}

function Operators({ board }) {
  if (!board.operators.length) return html`<p class="muted">${t("none")}</p>`;
  return html`<div class="tiles">${board.operators.map((o) => {
    const status = o.call && !["in_use", "busy", "ring_in_use", "on_hold"].includes(o.status) ? "in_use" : o.status;
    const since = o.call ? o.call.talking_since : o.since;
    return html`<div key=${o.operator} data-operator=${o.operator}
        class=${`tile s-${status || "unknown"}${o.paused ? " paused" : ""}`}>
      <div class="line top"><b class="data">${o.operator}</b><span class="timer">${since ? duration(since) : ""}</span></div>
      <div class="line">${o.paused ? [`${t("paused")}: `, o.paused_reason
        ? html`<span class="data">${o.paused_reason}</span>` : t("paused_no_reason")]
        : word("st_" + status, "st_unknown")}</div>
    </div>`;
  })}</div>`;
}

function LiveCalls({ board, selected, onSelect }) {
  if (!board.live_calls.length) return html`<p class="muted">${t("none")}</p>`;
  return html`<div class="calls">${board.live_calls.map((c) => {
    const operator = c.talking_with || c.answered_by;
    const talking = c.state === "talking" && operator;
    const cells = [
      html`<div class="line top"><span class=${`badge b-${c.state}`}>${t("call_" + c.state)}</span>
        <span class="timer">${duration(c.since)}</span><span class="op data">${operator || ""}</span></div>`,
      html`<div class="line">${clientName(board.clients, c.client)}${c.escalated ? ` · ${t("escalated_call")}` : ""}</div>`,
      html`<div class="line">${c.caller_name || c.caller_e164_display
        ? html`<span class="data">${c.caller_name || ""} ${c.caller_e164_display || ""}</span>` : t("withheld")}</div>`,
    ];
    return talking
      ? html`<button type="button" class="callrow" key=${c.linkedid} data-linkedid=${c.linkedid}
          data-operator=${operator} aria-pressed=${String(selected === operator)}
          onClick=${() => onSelect(operator, c)}>${cells}</button>`
      : html`<div class="callrow" key=${c.linkedid} data-linkedid=${c.linkedid}>${cells}</div>`;
  })}</div>`;
}

// The parts of an alert's line; {data} parts are names and numbers, shown as they are.
function alertText(alert, board) {
  const call = alert.call || {};
  const who = call.caller_name || call.caller_e164_display
    ? { data: `${call.caller_name || ""} ${call.caller_e164_display || ""}`.trim() } : t("withheld");
  switch (alert.kind) {
    case "repeat_caller": {
      const r = alert.repeat || {};
      return [clientName(board.clients, call.client), who, t("nth_call", { n: r.calls || "?" }),
        r.first_at ? t("first_call", { t: time(r.first_at) }) : "",
        r.owed ? t("owed", { n: r.owed }) : t("owed_none"),
        r.last_operator ? t("last_op", { op: r.last_operator }) : ""];  // an extension: digits
    }
    case "operator_escalation":
      return [clientName(board.clients, call.client), who, word(alert.reason || "unspecified", "unspecified"),
        alert.requested_by ? t("by_op", { op: alert.requested_by }) : ""];
    case "long_wait":
      return [clientName(board.clients, call.client), who, t("waited", { d: duration(call.joined_at) })];
    case "overdue_callback": {
      const o = alert.obligation;
      return [clientName(board.clients, o.client), { data: o.caller_e164_display || o.caller_number || "" },
        t("missed_calls_n", { n: o.calls }), t("due_was", { t: time(o.due_at) })];
    }
    case "delivery_failed": {
      const d = alert.delivery;
      return [t("delivery_to", { client: clientName(board.clients, d.client), channel: t("ch_" + d.channel) }),
        { data: d.caller_name || d.caller_e164_display || "" }, t("attempts_n", { n: d.attempts })];
    }
    case "handraise": {  // 手上げ: the caller on hold; acted on at the supervisor desk
      const row = alert.alert || {};
      return [clientName(board.clients, row.client), t("by_op", { op: (row.detail || {}).operator || "" }),
        t("hr_hold_time", { d: duration(alert.since) })];
    }
    case "safety_net": {
      const row = alert.alert || {};
      const status = (row.detail || {}).supervisor_queue_status;
      return [clientName(board.clients, row.client),
        t(status === "TIMEOUT" || status === "JOINEMPTY" ? "sn_" + status : "sn_other"), t("sn_back")];
    }
    case "pbx_down":
    case "spooling":
      return [{ data: alert.pbx_id }, time(alert.since)];
    default:
      return [];
  }
}

function Alerts({ board, onAck }) {
  if (!board.alerts.length) return html`<p class="muted">${t("none")}</p>`;
  const ordered = [...board.alerts.filter((a) => !a.acked), ...board.alerts.filter((a) => a.acked)];
  return html`<ul class="alerts">${ordered.map((a) => html`<li key=${a.key}
      class=${`alert k-${a.kind}${a.acked ? " acked" : ""}`} data-kind=${a.kind} data-key=${a.key}>
    <div class="row"><span class="kind">${t("a_" + a.kind)}</span>
      <span class="muted">${time(a.since, false)}</span></div>
    <div class="text">${alertText(a, board).filter((p) => p && (p.data === undefined || p.data))
      .map((p, i) => [i ? " · " : "", p.data !== undefined ? html`<span class="data">${p.data}</span>` : p])}</div>
    <div class="row">${a.acked ? html`<span class="muted">${t("acked_by", { who: a.acked.acked_by })}</span>`
      : html`<span></span><button type="button" class="ack" onClick=${() => onAck(a.key)}>${t("ack")}</button>`}</div>
  </li>`)}</ul>`;
}

function Spy({ selected, call, board, message, onSpy }) {
  if (!selected) return html`<p class="muted spy-hint">${t("spy_hint")}</p>`;
  return html`<div class="spy" id="spy" data-operator=${selected}>
    <div><b>${t("spy_title")}</b>: <span class="data">${selected}</span> · ${call ? clientName(board.clients, call.client) : ""}</div>
    <div class="buttons">${["listen", "whisper", "barge"].map((mode) => html`<button type="button"
      data-mode=${mode} class=${mode === "barge" ? "danger" : ""} onClick=${() => onSpy(mode)}>${t(mode)}</button>`)}</div>
    <p class="status" id="status" role="status">${message}</p>
  </div>`;
}

function Banner({ status }) {
  if (!status) return null;
  const lines = status.alerts.map((a) => {
    const link = status.pbx.find((p) => p.pbx_id === a.pbx_id) || {};
    if (a.kind === "pbx_down") {
      return t("pbx_down_banner", { pbx: a.pbx_id, host: link.host, port: link.port, t: time(a.since) });
    }
    if (a.kind === "reconcile_stopped" || a.kind === "reconcile_differences") {
      return t(`${a.kind}_banner`, { pbx: a.pbx_id, n: a.count, t: a.since ? time(a.since) : "–" });
    }
    return a.kind === "unrouted_calls"
      ? t("unrouted_banner", { pbx: a.pbx_id, t: time(a.since) })
      : t("spooling_banner", { pbx: a.pbx_id });
  });
  if (!lines.length) return null;
  return html`<div class="banner" id="banner" role="alert">${lines.map((line) => html`<div>${line}</div>`)}</div>`;
}

// A busy floor must still fit one screen: a tile panel whose content overflows is drawn
// denser (smaller type, so more tiles per row), step by step, until every tile is in sight.
const DENSITY_STEPS = 4;
function fitPanels() {
  for (const panel of document.querySelectorAll(".body.fit")) {
    let level = 0;
    panel.dataset.dense = "0";
    while (panel.scrollHeight > panel.clientHeight + 1 && level < DENSITY_STEPS) {
      level += 1;
      panel.dataset.dense = String(level);
    }
  }
}

function App() {
  const [board, setBoard] = useState(null);
  const [status, setStatus] = useState(null);
  const [selected, setSelected] = useState(null);
  const [message, setMessage] = useState("");
  useTick(1000);
  useEffect(() => { fitPanels(); });  // after every render: calls come and go
  useEffect(() => {
    window.addEventListener("resize", fitPanels);
    return () => window.removeEventListener("resize", fitPanels);
  }, []);
  useEffect(() => {
    const load = async () => {
      try {
        const next = await api("/api/wallboard");
        syncClock(next.now);
        setBoard(next);
      } catch (error) {
        setMessage(problem(error));
      }
    };
    const loadStatus = async () => {
      try { setStatus(await api("/api/status")); } catch { /* shown by the next try */ }
    };
    const soon = debounce(load, 250);
    const source = live(() => soon());
    load();
    loadStatus();
    // Operators' states change without a call event; the PBX links are this process's state.
    const timers = [setInterval(load, 5000), setInterval(loadStatus, 5000)];
    return () => { source.close(); timers.forEach(clearInterval); };
  }, []);
  if (!board) return html`<p class="muted">${t("loading")}</p>`;
  const selectedCall = board.live_calls.find((c) => (c.talking_with || c.answered_by) === selected && c.state === "talking");
  const spy = async (mode) => {
    if (mode === "barge" && !(await confirmDialog(t("barge_confirm", { op: selected }), t("barge")))) return;
    try {
      await api("/api/spy", { body: { operator: selected, mode } });
      setMessage(t("spy_started", { mode: t(mode), phone: user.extension || "" }));
    } catch (error) {
      setMessage(error.status === 404 ? t("on_no_call", { op: selected })
        : error.status === 400 ? t("no_phone") : error.status === 502 ? t("spy_failed", { mode: t(mode) }) : problem(error));
    }
  };
  const ack = async (key) => {
    try {
      await api("/api/alerts/ack", { body: { key } });
      setBoard(await api("/api/wallboard"));
    } catch (error) {
      setMessage(problem(error));
    }
  };
  const select = (operator) => { setSelected(operator === selected ? null : operator); setMessage(""); };
  return html`
    <${Banner} status=${status} />
    <main>
      <section id="p-today" aria-labelledby="h-today"><h2 id="h-today">${t("today")}</h2>
        <div class="body" id="today"><${Today} board=${board} /></div></section>
      <section id="p-queues" aria-labelledby="h-queues"><h2 id="h-queues">${t("queues")}</h2>
        <div class="body" id="queues"><${Queues} board=${board} /></div></section>
      <section id="p-operators" aria-labelledby="h-operators"><h2 id="h-operators">${t("operators")} (${board.operators.length})</h2>
        <div class="body fit" id="operators"><${Operators} board=${board} /></div></section>
      <section id="p-live" aria-labelledby="h-live"><h2 id="h-live">${t("live")} (${board.live_calls.length})</h2>
        <div class="body fit" id="live"><${LiveCalls} board=${board} selected=${selected} onSelect=${select} /></div></section>
      <section id="p-alerts" aria-labelledby="h-alerts"><h2 id="h-alerts">${t("alerts")} (${board.alerts.filter((a) => !a.acked).length})</h2>
        <div class="body"><${Spy} selected=${selected && selectedCall ? selected : null} call=${selectedCall}
          board=${board} message=${message} onSpy=${spy} />
          <div id="alerts"><${Alerts} board=${board} onAck=${ack} /></div></div></section>
    </main>`;
}

render(h(App, {}), document.getElementById("app"));
