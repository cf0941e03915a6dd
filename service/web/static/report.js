// The monthly client report page: one client's report (figures, charts, downloads) or, for
// admins and supervisors, every client on one page.  Standalone: it needs no other script.
// Everything from the API is inserted as text, never as HTML.
const WORDS = {
  ja: { title: "月次受電報告", month: "対象月", client: "お客様", all: "全クライアント",
        other_lang: "English", period: "対象期間", code: "コード", name: "名称",
        calls: "着信数", answered: "応答", missed: "不在", short: "短時間放棄",
        sl: "サービスレベル", counted: "カウント件数", plan: "プラン",
        over: "超過件数", amount: "超過料金（円）", details: "詳細", loading: "読み込み中…",
        chart_by_day: "日別の着信数", chart_by_hour: "時間帯別の着信数" },
  en: { title: "Monthly call report", month: "Month", client: "Client", all: "All clients",
        other_lang: "日本語", period: "Period", code: "Code", name: "Name", calls: "Calls",
        answered: "Answered", missed: "Missed", short: "Short abandons", sl: "Service level",
        counted: "Counted", plan: "Plan", over: "Over plan", amount: "Overage (JPY)",
        details: "Details", loading: "Loading…", chart_by_day: "Calls per day",
        chart_by_hour: "Calls per hour of day" },
};
const params = new URLSearchParams(location.search);
const lang = params.get("lang") || localStorage.getItem("report-lang") || "ja";
const w = (key) => (WORDS[lang] || WORDS.ja)[key];
const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function number(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    return Number.isInteger(value) ? value.toLocaleString(lang) :
      value.toLocaleString(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  }
  return String(value);
}

async function get(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (response.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("log in first");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function previousMonth() {
  const now = new Date();
  const first = new Date(now.getFullYear(), now.getMonth() - 1, 1);
  return `${first.getFullYear()}-${String(first.getMonth() + 1).padStart(2, "0")}`;
}

function query(extra) {
  const q = new URLSearchParams({ month: $("month").value, lang, ...extra });
  return q.toString();
}

function showAll(body) {
  $("one").hidden = true;
  $("all").hidden = false;
  const head = $("summary-head");
  head.replaceChildren();
  for (const key of ["code", "name", "calls", "answered", "missed", "short", "sl", "plan",
                     "counted", "over", "amount", ""]) {
    head.append(el("th", key ? w(key) : "", ["code", "name", ""].includes(key) ? "" : "n"));
  }
  const rows = $("summary").tBodies[0];
  rows.replaceChildren();
  for (const r of body.items) {
    const tr = el("tr");
    tr.dataset.client = r.client;
    tr.append(el("td", r.client), el("td", lang === "ja" ? r.client_name_ja : r.client_name_en));
    for (const value of [r.calls, r.outcomes.answered, r.missed.total, r.missed.short_abandon,
                         r.service_level.percent === null ? null : r.service_level.percent + " %",
                         r.plan.plan_calls, r.plan.counted_calls, r.plan.overage_calls,
                         r.plan.overage_amount]) {
      tr.append(el("td", number(value), "n"));
    }
    const link = el("a", w("details"));
    link.href = "?" + new URLSearchParams({ month: $("month").value, client: r.client, lang });
    const cell = el("td");
    cell.append(link);
    tr.append(cell);
    rows.append(tr);
  }
}

function showOne(report) {
  $("all").hidden = true;
  $("one").hidden = false;
  $("client-name").textContent =
    `${lang === "ja" ? report.client_name_ja : report.client_name_en} (${report.client}) — ${report.month}`;
  $("period").textContent =
    `${w("period")}: ${report.period_start} — ${report.period_end} (${report.timezone})`;
  const downloads = $("downloads");
  downloads.replaceChildren();
  for (const format of ["pdf", "xlsx", "csv", "html", "json"]) {
    const link = el("a", format.toUpperCase());
    link.href = "/api/reports/monthly?" + query({ client: report.client, format });
    link.id = "download-" + format;
    downloads.append(link);
  }
  const figures = $("figures");
  figures.replaceChildren();
  let table = null;
  let section = null;
  for (const [sec, label, value] of report.figures) {
    if (sec !== section) {
      figures.append(el("h3", sec));
      table = el("table");
      figures.append(table);
      section = sec;
    }
    const tr = el("tr");
    tr.append(el("th", label), el("td", number(value), "n"));
    table.append(tr);
  }
  $("definition").textContent = report.service_level.definition[lang] || "";
  for (const which of ["by_day", "by_hour"]) {
    const img = $("chart-" + which.replace("_", "-"));
    img.alt = w("chart_" + which);
    img.src = "/api/reports/chart?" + query({ client: report.client, chart: which });
  }
}

async function load() {
  $("status").textContent = "";
  const client = $("client").value;
  try {
    if (client) {
      showOne(await get("/api/reports/monthly?" + query({ client, figures: "1" })));
    } else {
      showAll(await get("/api/reports/monthly?" + query({})));
    }
    document.body.dataset.loaded = client || "all";
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function start() {
  document.documentElement.lang = lang;
  $("title").textContent = w("title");
  $("l-month").textContent = w("month");
  $("l-client").textContent = w("client");
  $("lang-switch").textContent = w("other_lang");
  $("lang-switch").addEventListener("click", () => {
    localStorage.setItem("report-lang", lang === "ja" ? "en" : "ja");
    const q = new URLSearchParams(location.search);
    q.delete("lang");
    location.search = q.toString();
  });
  $("month").value = params.get("month") || previousMonth();
  const me = await get("/api/me");
  const clients = (await get("/api/clients")).items;
  const select = $("client");
  if (me.role !== "client") select.append(new Option(w("all"), ""));
  for (const c of clients) select.append(new Option(`${c.code} ${c.name}`, c.code));
  if (me.role === "client") $("client-label").hidden = clients.length < 2;
  const wanted = params.get("client");
  if (wanted && clients.some((c) => c.code === wanted)) select.value = wanted;
  select.addEventListener("change", load);
  $("month").addEventListener("change", load);
  await load();
}

start().catch((error) => { $("status").textContent = error.message; });
