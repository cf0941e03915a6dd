// Shared by every page: API calls with the CSRF token, safe DOM building (text only, never
// HTML from data), the live stream, Japanese/English labels.
const I18N = {
  en: {
    wallboard: "Wallboard", operator: "Operator", worklist: "Call backs", portal: "Portal",
    logout: "Log out", login: "Log in", username: "User name", password: "Password",
    queues: "Queues", queue: "Queue", waiting: "Waiting", longest: "Longest wait",
    today: "Today", client: "Client", answered: "Answered", missed: "Missed",
    reasons: "Missed reasons", sl: "Service level", operators: "Operators", state: "State",
    live: "Live calls", caller: "Caller", name: "Name", since: "Since", by: "Operator",
    alerts: "Alerts", listen: "Listen", whisper: "Whisper", barge: "Barge", calls: "Calls",
    outcome: "Outcome", wait: "Wait", talk: "Talk", started: "Started", messages: "Messages",
    obligations: "Call backs owed", due: "Due", done: "Mark done", call: "Call",
    current_call: "Current call",
    export: "Export CSV", message: "Message", disposition: "Disposition", send: "Send",
    escalate: "Escalate", history: "History", greeting: "Greeting", notes: "Notes",
    no_call: "No call ringing.", reason: "Reason", number: "Number", attempts: "Attempts",
    missed_only: "Missed only", sent: "Sent", escalation: "Escalated caller",
    long_wait: "Long wait", overdue_callback: "Overdue call back", open: "open",
    fulfilled: "fulfilled", expired: "expired", cancelled: "cancelled",
    cannot_call_back: "cannot call back", callback_requested: "Call back requested",
    urgent: "Urgent", info_only: "For information", complaint: "Complaint",
    complaint_naming_operator: "Complaint about an operator",
    payment_dispute: "Payment dispute", other: "Other", withheld: "(withheld)",
    answered_o: "answered", abandoned: "abandoned", short_abandon: "short abandon",
    ivr_hangup: "hung up in greeting", timeout: "timeout", no_agents: "no agents",
    queue_full: "queue full", exit_key: "left by key", after_hours: "after hours",
    forwarded: "forwarded", unknown: "unknown",
  },
  ja: {
    wallboard: "ウォールボード", operator: "オペレーター", worklist: "折り返し一覧",
    portal: "ポータル", logout: "ログアウト", login: "ログイン", username: "ユーザー名",
    password: "パスワード", queues: "キュー", queue: "キュー", waiting: "待ち呼",
    longest: "最長待ち時間", today: "本日", client: "クライアント", answered: "応答",
    missed: "不応答", reasons: "不応答の理由", sl: "サービスレベル",
    operators: "オペレーター", state: "状態", live: "通話中・待ち", caller: "発信者",
    name: "名前", since: "開始", by: "応対者", alerts: "アラート", listen: "モニター",
    whisper: "ウィスパー", barge: "割り込み", calls: "着信履歴", outcome: "結果",
    wait: "待ち", talk: "通話", started: "日時", messages: "受電報告",
    obligations: "折り返し義務", due: "期限", done: "対応済みにする", call: "発信",
    current_call: "着信中の通話",
    export: "CSV出力", message: "伝言", disposition: "区分", send: "送信",
    escalate: "エスカレーション", history: "過去の履歴", greeting: "応対スクリプト",
    notes: "注意事項", no_call: "着信はありません。", reason: "理由", number: "番号",
    attempts: "発信回数", missed_only: "不応答のみ", sent: "送信しました",
    escalation: "エスカレーション", long_wait: "長時間待ち",
    overdue_callback: "折り返し期限超過", open: "未対応", fulfilled: "対応済み",
    expired: "期限切れ", cancelled: "取消", cannot_call_back: "折り返し不可",
    callback_requested: "折り返し希望", urgent: "至急", info_only: "伝言のみ",
    complaint: "クレーム", complaint_naming_operator: "オペレーターへのクレーム",
    payment_dispute: "支払いに関する苦情", other: "その他", withheld: "（非通知）",
    answered_o: "応答", abandoned: "放棄", short_abandon: "短時間放棄",
    ivr_hangup: "ガイダンス中切断", timeout: "タイムアウト", no_agents: "受付者なし",
    queue_full: "キュー満杯", exit_key: "キー操作で離脱", after_hours: "時間外",
    forwarded: "転送", unknown: "不明",
  },
};

export const lang = localStorage.getItem("lang") ||
  ((navigator.language || "ja").startsWith("en") ? "en" : "ja");

export function t(key) {
  return (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
}

// Static labels are marked in the HTML (data-t="key") and written once, in the page's language.
for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);

export function outcome(value) {
  return value === "answered" ? t("answered_o") : t(value || "unknown");
}

export async function api(path, options = {}) {
  const headers = { "Accept": "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = sessionStorage.getItem("csrf") || "";
  }
  const response = await fetch(path, {
    method: options.method || (options.body !== undefined ? "POST" : "GET"),
    headers, credentials: "same-origin",
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  if (response.status === 401 && !path.startsWith("/api/login")) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("not logged in");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.error || data.reason || response.statusText);
    error.status = response.status;
    error.data = data;
    throw error;
  }
  return data;
}

export async function me() {
  const user = await api("/api/me");
  if (user.csrf_token) sessionStorage.setItem("csrf", user.csrf_token);
  return user;
}

// Build elements from data with textContent only: caller names are caller-controlled.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (key === "class") node.className = value;
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, t(h))))),
    el("tbody", {}, rows));
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(lang === "ja" ? "ja-JP" : "en-GB",
    { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function seconds(value) {
  return value === null || value === undefined ? "" : `${Math.round(value)}s`;
}

export function replace(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children);
  return node;
}

export function live(onEvent) {
  const source = new EventSource("/api/stream");
  for (const kind of ["call", "ring", "alert", "resync"]) {
    source.addEventListener(kind, (message) => onEvent(kind, JSON.parse(message.data)));
  }
  return source;
}

export function header(user, title) {
  const links = {
    admin: ["wallboard", "worklist", "operator"], supervisor: ["wallboard", "worklist", "operator"],
    operator: ["operator", "worklist"], client: ["portal"],
  }[user.role] || [];
  const other = lang === "ja" ? "en" : "ja";
  document.body.prepend(el("header", {},
    el("h1", {}, `orikaeshi · ${t(title)}`),
    el("nav", {}, links.map((page) => el("a", { href: `/${page}` }, t(page)))),
    el("span", { class: "muted" }, `${user.display_name || user.username} (${user.role})`),
    el("button", { on: { click: () => { localStorage.setItem("lang", other); location.reload(); } } },
      other === "ja" ? "日本語" : "English"),
    el("button", { id: "logout", on: { click: async () => {
      await api("/api/logout", { body: {} }); location.href = "/login"; } } }, t("logout"))));
  document.title = `orikaeshi · ${t(title)}`;
}

export function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}
