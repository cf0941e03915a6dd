// Shared by every page: the words of both languages, API calls with the CSRF token, the live
// stream, the header, durations and numbers as people read them.  Views are Preact
// components written with htm (vendor/, no build step): text from data is always inserted as
// text, never as HTML (caller names are caller-controlled).
import { h, html, render, useEffect, useRef, useState } from "/static/vendor/htm-preact.module.js";

export { h, html, render, useEffect, useRef, useState };

const I18N = {
  en: {
    brand: "orikaeshi",
    wallboard: "Wallboard", operator: "Operator screen", worklist: "Call backs",
    portal: "Portal", report: "Monthly report",
    logout: "Log out", login: "Log in", username: "User name", password: "Password",
    language: "Language", nav: "Pages",
    role_admin: "Administrator", role_supervisor: "Supervisor", role_operator: "Operator",
    role_client: "Client",
    login_wrong: "Wrong user name or password.",
    login_throttled: "Too many failed attempts. Please wait a few minutes and try again.",
    login_bad: "Enter your user name and password.",
    err_forbidden: "Your role may not do this.", err_not_found: "Not found (or not yours).",
    err_server: "The service did not answer. Try again.", err_network: "No connection to the service.",
    err_bad: "The request was not accepted.", err_conflict: "Already done by someone else.",
    denied: "That page is not for your role; this is your page.",
    // wallboard
    today: "Today per client", queues: "Queues", operators: "Operators", live: "Live calls",
    alerts: "Alerts", offered: "Offered", answered: "Answered", missed: "Missed",
    sl: "Service level", sl_within: "within {s}s", target: "target {p}%",
    below_target: "below target",
    chart_label: "Calls by hour today: answered and missed",
    queue: "Queue", waiting: "Waiting", longest: "Longest wait", supervisors: "Supervisors",
    unknown_queue: "Other queue",
    st_not_in_use: "Free", st_in_use: "On a call", st_busy: "Busy", st_ringing: "Ringing",
    st_ring_in_use: "Ringing (on a call)", st_on_hold: "On hold", st_unavailable: "Logged out",
    st_invalid: "Not reachable", st_unknown: "Unknown", st_null: "Unknown",
    paused: "Paused", paused_no_reason: "no reason given",
    call_greeting: "Greeting", call_waiting: "Waiting", call_talking: "Talking",
    with_op: "with {op}", escalated_call: "Escalated",
    a_repeat_caller: "Repeat caller", a_operator_escalation: "Operator escalation",
    a_long_wait: "Long wait", a_overdue_callback: "Overdue call back",
    a_pbx_down: "PBX link down", a_spooling: "Records spooled", a_delivery_failed: "Delivery failed",
    nth_call: "call no. {n}", first_call: "first call {t}", owed: "{n} call back(s) owed",
    owed_none: "no call back owed", last_op: "last operator {op}",
    waited: "waiting {d}", over_limit: "(alert after {s}s)", due_was: "due {t}",
    missed_calls_n: "{n} missed call(s)", delivery_to: "message to {client} by {channel}",
    ch_webhook: "webhook", ch_email: "e-mail", attempts_n: "{n} attempt(s)",
    by_op: "by {op}", ack: "Acknowledge", acked_by: "Seen by {who}",
    pbx_down_banner: "PBX link down: {pbx} ({host}:{port}) since {t}. Live calls and queues on this board are not current.",
    spooling_banner: "Database unreachable: call records from {pbx} are kept in the spool and will be written when it is back.",
    unrouted_banner: "Calls from {pbx} arrive without DID or routing decision since {t}: the service watches the wrong dialplan context (run orikaeshi dialplan check).",
    reconcile_stopped_banner: "Reconciliation with Asterisk's records for {pbx} stopped reading (last success {t}): unknown calls are not being settled.",
    reconcile_differences_banner: "{n} difference(s) between the ledger and Asterisk's records for {pbx} are left since {t}: see the reconcile page.",
    listen: "Listen", whisper: "Whisper", barge: "Barge",
    spy_title: "Selected call", spy_hint: "Choose a talking call to listen, whisper or barge.",
    barge_confirm: "Barge into operator {op}'s call? The caller and the operator will both hear you.",
    confirm: "Confirm", cancel_action: "Back",
    spy_started: "{mode}: your phone ({phone}) is ringing.", spy_failed: "{mode} failed: the PBX refused.",
    no_phone: "Your user has no phone extension.", on_no_call: "Operator {op} is on no call now.",
    // operator
    no_call: "No call at your phone.", pop_ringing: "Ringing", pop_talking: "Talking",
    pop_taken: "Answered by operator {op}", pop_ended: "Call ended", pop_missed_ring: "Not answered at your phone",
    pop_escalated: "Escalated to supervisors", caller: "Caller", greeting: "Greeting",
    notes: "Notes", history: "This caller's history", open_callbacks: "Call backs owed to this caller",
    messages_for_caller: "Earlier messages", message: "Message", disposition: "Kind",
    send: "Send message", sent: "Message sent.", escalate: "Transfer to a supervisor",
    escalate_reason: "Reason", escalate_confirm: "Move this caller to the supervisors ({reason})?",
    escalated_ok: "Escalated: the caller is moving to the supervisors.",
    escalate_failed: "Could not move the call.",
    repeat_title: "Repeat caller: call no. {n}", repeat_first: "First call of the streak",
    repeat_owed: "Call backs owed", repeat_last: "Last operator",
    callback_requested: "Call back requested", urgent: "Urgent", info_only: "For information",
    complaint: "Complaint", complaint_naming_operator: "Complaint about an operator",
    payment_dispute: "Payment dispute", other: "Other", repeat_caller: "Repeat caller",
    transfer: "Transferred by an operator", unspecified: "No reason given",
    withheld: "Number withheld",
    // worklist
    obligations: "Call backs owed", due: "Due", client: "Client", name: "Name",
    number: "Number", missed_n: "Missed calls", attempts: "Attempts", calling_hours: "Calling hours",
    actions: "Actions", call: "Call", done: "Done", cancel: "Cancel", cancel_reason: "Why cancel?",
    done_note: "Note (optional)", save: "Save",
    overdue: "Overdue", due_in: "due {t}", open_now: "Allowed now ({w})",
    closed_until: "Not allowed now; opens {t} ({w})", closed_unknown: "Not allowed now ({w})",
    dialling: "Dialling: your phone rings first.", refused_hours: "Refused: outside the calling hours ({w}); opens {t}.",
    no_pbx_link: "No connection to the PBX: nothing was dialled.", call_failed: "The PBX did not place the call.",
    refused_dnc: "Refused: this number is on the client's do-not-call list.", refused_limit: "Refused: the contact limit for this number (attempts per day or the minimum gap).",
    not_open: "This call back is no longer open.", marked_done: "Marked done.", cancelled_ok: "Cancelled.",
    // worklist: call backs scheduled for a time (times in the client's zone, named)
    schedule: "Schedule", schedule_at: "Call back at ({z})", schedule_save: "Schedule call back",
    scheduled_for: "Scheduled {t} ({z}), phone {op}", scheduled_moved: "moved: {why}",
    scheduled_ok: "Scheduled for {t} ({z}).", cancel_scheduled: "Cancel schedule",
    scheduled_cancelled: "Schedule cancelled.", scheduled_gone: "This schedule was already placed or cancelled.",
    sched_hours: "Not allowed at that time: outside the calling hours. The earliest is {t} ({z}).",
    sched_limit: "Not allowed at that time: the contact limit (attempts per day or minimum gap). The earliest is {t} ({z}).",
    sched_dnc: "This number is on the client's do-not-call list: no call back can be scheduled.",
    sched_past: "That time is in the past.", sched_pick: "Choose a date and time.", use_time: "Use {t}",
    why_calling_hours: "outside the calling hours", why_max_attempts: "attempts per day reached",
    why_min_gap: "too soon after the last attempt", why_do_not_call: "on the do-not-call list",
    blocked_until: "Not allowed now ({why}); opens {t} ({z})", blocked_never: "Not allowed ({why})",
    reason_missed: "Missed call", reason_message: "Message asks for a call back",
    // worklist: a message to the callee by e-mail or fax (held outside the callee's hours)
    msg: "E-mail / fax", msg_channel: "Send by", msg_email: "E-mail", msg_fax: "Fax (to the number)",
    msg_address: "E-mail address", msg_subject: "Subject", msg_body: "Message", msg_send: "Send",
    msg_sent: "Sending now.", msg_held: "Outside the callee's hours: held, it leaves at {t} ({z}).",
    msg_refused: "Not sent: {why}.", msg_no_fax: "No fax gateway is configured: ask the admin.",
    // portal
    calls: "Calls", started: "Time", outcome: "Outcome", wait: "Wait", talk: "Talk",
    messages: "Messages", from: "From", to: "To", any_outcome: "Any outcome",
    missed_only: "Missed calls only", export: "Download CSV", filter: "Show",
    state: "State", by: "Answered by", verified: "verified", reported: "reported",
    dir_outbound: "Call back", in_progress: "In progress",
    open: "Open", fulfilled: "Done", expired: "Expired", cancelled: "Cancelled",
    cannot_call_back: "Cannot call back",
    answered_o: "Answered", abandoned: "Abandoned", short_abandon: "Hung up within seconds",
    ivr_hangup: "Hung up during greeting", timeout: "No one answered in time",
    no_agents: "No operator available", queue_full: "Queue full", exit_key: "Left by a key",
    after_hours: "After hours", forwarded: "Forwarded", unknown: "Unknown",
    r_answered: "answered", r_busy: "busy", r_no_answer: "no answer", r_failed: "failed",
    none: "None", loading: "Loading…",
    // call flows (docs/callflows.md)
    supervisor: "Supervisor desk",
    a_handraise: "Raised hand: caller on hold",
    a_safety_net: "No supervisor answered",
    err_no_ami: "This service has no connection to the PBX now: nothing was changed.",
    err_bad_detail: "Not accepted: {why}",
    presence: "My status",
    pr_logged_in: "Taking calls",
    pr_paused: "Paused",
    pr_logged_out: "Logged out",
    pr_unknown: "Not set yet",
    pr_since: "since {t}",
    pr_login: "Start taking calls",
    pr_logout: "Stop taking calls",
    pr_pause_op: "Pause them", pr_logout_op: "End their shift",
    pr_changed: "{op}: {state}.",
    pr_pause: "Pause",
    pr_unpause: "Back to calls",
    pr_reason: "Reason",
    pr_queues: "Queues (empty: as last time)",
    pr_done: "Status changed: {state}",
    pr_refused: "Not changed: the PBX refused, or it does not fit your status (pause only while logged in; the first log in needs the queues).",
    pr_no_phone: "Your user has no phone extension: status cannot be changed here.",
    reason_break: "Break",
    reason_after_call_work: "After-call work",
    reason_training: "Training",
    reason_meeting: "Meeting",
    reason_lunch: "Lunch",
    reason_other: "Other",
    hr_button: "Raise hand: hold the caller, call a supervisor",
    hr_held: "Caller on hold: waiting for a supervisor",
    hr_joined: "Supervisor {who} joined: the caller is still on hold",
    hr_taken_over: "Taken over by the supervisor",
    hr_handed_back: "Handed back: the caller is with you again",
    hr_caller_hung_up: "The caller hung up while on hold",
    hr_cancelled: "Not on hold: the PBX did not move the caller",
    hr_hold_time: "on hold {d}",
    hr_no_call: "No call at your phone: nothing to hold.",
    hr_not_bridged: "Not on hold: you are not connected to a caller now, or the PBX refused.",
    rec_button: "Record this call",
    rec_on: "Recording",
    rec_all: "Every call of this client is recorded",
    rec_started: "Recording started.",
    rec_refused: "Not recorded: this client's calls are not recorded on request, or the PBX refused.",
    rec_no_call: "No call at your phone: nothing to record.",
    cp_open: "Record a complaint",
    cp_category: "Category",
    cat_operator_attitude: "Operator's attitude",
    cat_operator_mistake: "Operator's mistake",
    cat_no_callback: "No call back",
    cat_service: "Service",
    cat_payment: "Payment",
    cat_other: "Other",
    cp_body: "What happened",
    cp_named: "Operator the caller named (optional)",
    cp_save: "Record the complaint",
    cp_saved: "Complaint {id} recorded.",
    cp_bad: "Not recorded: choose a category and write what happened.",
    cp_for_call: "About this call",
    complaints: "Complaints",
    cp_status: "Status",
    any_status: "Any status",
    cs_open: "Open",
    cs_in_progress: "In progress",
    cs_resolved: "Resolved",
    cs_closed: "Closed",
    cp_resolution: "Resolution",
    cp_taken_over_by: "Taken over by",
    cp_update: "Update",
    cp_updated: "Complaint {id}: {status}.",
    cp_need_resolution: "Not saved: write the resolution to resolve or close (a closed complaint stays closed).",
    cp_named_short: "Named",
    cp_by: "Recorded by",
    cp_count_title: "Complaints",
    cp_count_n: "{n} complaint(s)",
    cp_count_all: "all time",
    cp_count_range: "in the dates shown",
    dp_title: "Call result",
    dp_choose: "Result",
    dp_save: "Save result",
    dp_saved: "Result saved: {code}",
    dp_wrapup: "After-call work {d}: choose the result",
    dp_done: "Result: {code}",
    dp_none: "This client has no result codes.",
    dp_bad: "Not saved: only an answered call takes a result, from the client's list.",
    dp_not_yet: "Choose the result once the call is answered.",
    dc_message_taken: "Message taken",
    dc_info_given: "Information given",
    dc_transferred: "Transferred",
    dc_callback_promised: "Call back promised",
    dc_wrong_number: "Wrong number",
    dc_sales: "Sales call",
    dc_complaint: "Complaint",
    dc_other: "Other",
    handraises: "Raised hands",
    hr_take_over: "Take over",
    hr_hand_back: "Hand back",
    hr_listen: "Listen",
    hr_wait_join: "Take over or whisper once a supervisor is in the room (answer the room call, or listen).",
    hr_waiting: "Waiting for a supervisor",
    hr_helping: "{who} in the room",
    hr_done_take: "Taken over: the caller joins you in the room.",
    hr_done_back: "Handed back to operator {op}.",
    hr_listen_refused: "Listen is not available ({status}): the service refused it. Answer the room call on your phone instead.",
    hr_refused: "Not done: already decided, nobody has joined yet, or the caller has gone.",
    hr_gone: "This raised hand is no longer open.",
    hr_recent: "Recently decided",
    hr_result: "{what}: on hold {hold}, helped {help}",
    held_for: "On hold",
    helper: "Supervisor",
    operator_col: "Operator",
    safety_net: "Safety net",
    sn_TIMEOUT: "no supervisor answered in time",
    sn_JOINEMPTY: "no supervisor logged in",
    sn_other: "supervisors unavailable",
    sn_back: "sent back to the operators",
    clear: "Clear",
    cleared: "Cleared.",
    presence_all: "Operators' status",
    in_state: "For",
    recordings: "Recordings",
    play: "Play",
    download: "Download",
    rec_reason_policy: "All calls",
    rec_reason_on_demand: "On request",
    rec_by: "Started by",
    call_col: "Call",
    rec_audited: "Every playback and download is logged.",
    rec_missing: "Cannot play: the file is not here (deleted, or on another server), or not yours.",
    rec_playing: "Recording {id}",
    new_complaint: "New complaint",
    res_taken_over: "Taken over",
    res_handed_back: "Handed back",
    res_caller_hung_up: "Caller hung up",
    res_cancelled: "Not held",
    hr_whisper: "Whisper",
    hr_listening_rung: "Listening: your phone ({phone}) is ringing into the room, muted.",
    hr_listening_muted: "Listening: {who} is muted in the room.",
    hr_whispering: "Whisper: {who} now talks to the operator only; the caller hears hold music.",
    hr_supervise_refused: "Not done: the PBX refused, nobody is in the room yet to whisper, or your user has no phone extension.",
    seconds_short: "{n}s",
  },
  ja: {
    brand: "折り返し",
    wallboard: "ウォールボード", operator: "オペレーター画面", worklist: "折り返し一覧",
    portal: "ポータル", report: "月次レポート",
    logout: "ログアウト", login: "ログイン", username: "ユーザー名", password: "パスワード",
    language: "言語", nav: "ページ",
    role_admin: "管理者", role_supervisor: "スーパーバイザー", role_operator: "オペレーター",
    role_client: "クライアント",
    login_wrong: "ユーザー名またはパスワードが違います。",
    login_throttled: "失敗が続いたため一時的にログインできません。数分後にもう一度お試しください。",
    login_bad: "ユーザー名とパスワードを入力してください。",
    err_forbidden: "この操作は権限がありません。", err_not_found: "見つかりません。",
    err_server: "サービスが応答しませんでした。もう一度お試しください。",
    err_network: "サービスに接続できません。",
    err_bad: "受け付けられませんでした。", err_conflict: "すでに他の人が対応済みです。",
    denied: "そのページはこの権限では使えないため、こちらのページを表示しています。",
    today: "本日のクライアント別", queues: "キュー", operators: "オペレーター", live: "通話中・待ち呼",
    alerts: "アラート", offered: "受付", answered: "応答", missed: "不応答",
    sl: "サービスレベル", sl_within: "{s}秒以内", target: "目標 {p}%", below_target: "目標未達",
    chart_label: "本日の時間帯別の応答数と不応答数",
    queue: "キュー", waiting: "待ち", longest: "最長待ち", supervisors: "スーパーバイザー",
    unknown_queue: "その他のキュー",
    st_not_in_use: "待機中", st_in_use: "通話中", st_busy: "話し中", st_ringing: "呼出中",
    st_ring_in_use: "呼出中（通話中）", st_on_hold: "保留中", st_unavailable: "ログアウト",
    st_invalid: "接続不可", st_unknown: "不明", st_null: "不明",
    paused: "離席", paused_no_reason: "理由なし",
    call_greeting: "ガイダンス中", call_waiting: "待ち", call_talking: "通話中",
    with_op: "応対 {op}", escalated_call: "エスカレーション",
    a_repeat_caller: "リピーター（折り返し未対応）", a_operator_escalation: "オペレーターの手上げ",
    a_long_wait: "長時間待ち", a_overdue_callback: "折り返し期限超過",
    a_pbx_down: "PBX接続断", a_spooling: "記録を一時保存中", a_delivery_failed: "受電報告の送信失敗",
    nth_call: "{n}回目の着信", first_call: "初回 {t}", owed: "折り返し未対応 {n}件",
    owed_none: "折り返し未対応なし", last_op: "前回の応対者 {op}",
    waited: "待ち時間 {d}", over_limit: "（{s}秒でアラート）", due_was: "期限 {t}",
    missed_calls_n: "不応答 {n}件", delivery_to: "{client} への{channel}",
    ch_webhook: "Webhook送信", ch_email: "メール送信", attempts_n: "{n}回試行",
    by_op: "{op} による", ack: "確認", acked_by: "{who} が確認済み",
    pbx_down_banner: "PBXとの接続が切れています: {pbx}（{host}:{port}）{t} から。このボードの通話とキューは最新ではありません。",
    spooling_banner: "データベースに接続できません: {pbx} の通話記録は一時保存しており、復旧後に書き込みます。",
    unrouted_banner: "{pbx} の着信が {t} から着信番号や振り分けなしで届いています。監視するダイヤルプランのコンテキストが違います（orikaeshi dialplan check で確認）。",
    reconcile_stopped_banner: "{pbx} の Asterisk 記録との照合が止まっています（最後の成功 {t}）。不明な通話が確定されません。",
    reconcile_differences_banner: "{pbx} の台帳と Asterisk 記録の差異が {n} 件、{t} から残っています。照合ページで確認してください。",
    listen: "モニター", whisper: "ウィスパー", barge: "割り込み",
    spy_title: "選択中の通話", spy_hint: "通話中の行を選ぶと、モニター・ウィスパー・割り込みができます。",
    barge_confirm: "オペレーター {op} の通話に割り込みますか？お客様とオペレーターの両方に声が聞こえます。",
    confirm: "実行する", cancel_action: "戻る",
    spy_started: "{mode}: あなたの電話（{phone}）を呼び出しています。", spy_failed: "{mode}できませんでした（PBXが拒否）。",
    no_phone: "このユーザーには内線番号が設定されていません。", on_no_call: "オペレーター {op} は現在通話していません。",
    no_call: "着信はありません。", pop_ringing: "呼出中", pop_talking: "通話中",
    pop_taken: "オペレーター {op} が応答しました", pop_ended: "通話は終了しました", pop_missed_ring: "この電話では応答されませんでした",
    pop_escalated: "スーパーバイザーへ転送済み", caller: "発信者", greeting: "応対スクリプト",
    notes: "注意事項", history: "この発信者の履歴", open_callbacks: "この発信者への折り返し（未対応）",
    messages_for_caller: "過去の伝言", message: "伝言", disposition: "区分",
    send: "伝言を送信", sent: "送信しました", escalate: "スーパーバイザーへ転送",
    escalate_reason: "理由", escalate_confirm: "このお客様をスーパーバイザーへ回しますか？（{reason}）",
    escalated_ok: "手上げしました。お客様はスーパーバイザーへ転送されます。",
    escalate_failed: "転送できませんでした。",
    repeat_title: "リピーター: {n}回目の着信", repeat_first: "今回の連続着信の初回",
    repeat_owed: "折り返し未対応", repeat_last: "前回の応対者",
    callback_requested: "折り返し希望", urgent: "至急", info_only: "伝言のみ",
    complaint: "クレーム", complaint_naming_operator: "オペレーターへのクレーム",
    payment_dispute: "支払いに関する苦情", other: "その他", repeat_caller: "リピーター",
    transfer: "オペレーターが転送", unspecified: "理由の指定なし",
    withheld: "非通知",
    obligations: "折り返し一覧", due: "期限", client: "クライアント", name: "お名前",
    number: "電話番号", missed_n: "不応答回数", attempts: "発信回数", calling_hours: "発信可能時間",
    actions: "操作", call: "発信", done: "対応済み", cancel: "取消", cancel_reason: "取消の理由",
    done_note: "メモ（任意）", save: "保存",
    overdue: "期限超過", due_in: "期限 {t}", open_now: "発信可（{w}）",
    closed_until: "発信不可・{t} から発信可（{w}）", closed_unknown: "発信不可（{w}）",
    dialling: "発信中: まずあなたの電話が鳴ります。", refused_hours: "発信できません: 発信可能時間（{w}）外です。{t} から発信できます。",
    no_pbx_link: "PBXに接続していないため発信できませんでした。", call_failed: "PBXが発信しませんでした。",
    refused_dnc: "発信できません: この番号は発信禁止リストにあります。", refused_limit: "発信できません: この番号への発信回数または間隔の制限に達しています。",
    not_open: "この折り返しはすでに対応済みか取消済みです。", marked_done: "対応済みにしました。", cancelled_ok: "取消しました。",
    schedule: "予約", schedule_at: "折り返し日時（{z}）", schedule_save: "折り返しを予約",
    scheduled_for: "予約 {t}（{z}）・内線 {op}", scheduled_moved: "変更: {why}",
    scheduled_ok: "{t}（{z}）に予約しました。", cancel_scheduled: "予約を取消",
    scheduled_cancelled: "予約を取消しました。", scheduled_gone: "この予約はすでに発信済みか取消済みです。",
    sched_hours: "その時刻には発信できません: 発信可能時間外です。最も早くて {t}（{z}）です。",
    sched_limit: "その時刻には発信できません: 発信回数または間隔の制限です。最も早くて {t}（{z}）です。",
    sched_dnc: "この番号は発信禁止リストにあるため予約できません。",
    sched_past: "過去の日時は予約できません。", sched_pick: "日時を選んでください。", use_time: "{t} にする",
    why_calling_hours: "発信可能時間外", why_max_attempts: "1日の発信回数に到達",
    why_min_gap: "前回の発信から間隔が足りません", why_do_not_call: "発信禁止リスト",
    blocked_until: "発信不可（{why}）・{t}（{z}）から発信可", blocked_never: "発信不可（{why}）",
    msg: "メール・FAX", msg_channel: "送信方法", msg_email: "メール", msg_fax: "FAX（この番号へ）",
    msg_address: "メールアドレス", msg_subject: "件名", msg_body: "本文", msg_send: "送信",
    msg_sent: "送信します。", msg_held: "相手先の発信可能時間外のため保留し、{t}（{z}）に送信します。",
    msg_refused: "送信できません: {why}。", msg_no_fax: "FAXの送信先が設定されていません。管理者に連絡してください。",
    reason_missed: "不応答", reason_message: "伝言で折り返し希望",
    calls: "着信履歴", started: "日時", outcome: "結果", wait: "待ち", talk: "通話",
    messages: "受電報告", from: "開始日", to: "終了日", any_outcome: "すべての結果",
    missed_only: "不応答のみ", export: "CSVダウンロード", filter: "表示",
    state: "状態", by: "応対者", verified: "発信を確認", reported: "報告による",
    dir_outbound: "折り返し発信", in_progress: "通話中",
    open: "未対応", fulfilled: "対応済み", expired: "期限切れ", cancelled: "取消",
    cannot_call_back: "折り返し不可",
    answered_o: "応答", abandoned: "放棄", short_abandon: "短時間放棄",
    ivr_hangup: "ガイダンス中切断", timeout: "時間内に応答なし",
    no_agents: "受付者なし", queue_full: "キュー満杯", exit_key: "キー操作で離脱",
    after_hours: "時間外", forwarded: "転送", unknown: "不明",
    r_answered: "応答", r_busy: "話し中", r_no_answer: "応答なし", r_failed: "失敗",
    none: "ありません", loading: "読み込み中…",
    // call flows (docs/callflows.md)
    supervisor: "スーパーバイザー画面",
    a_handraise: "手上げ（お客様保留中）",
    a_safety_net: "スーパーバイザー不在",
    err_no_ami: "このサービスは現在PBXに接続していないため、何も変更していません。",
    err_bad_detail: "受け付けられませんでした: {why}",
    presence: "受付状態",
    pr_logged_in: "受付中",
    pr_paused: "離席中",
    pr_logged_out: "ログアウト中",
    pr_unknown: "未設定",
    pr_since: "{t} から",
    pr_login: "受付開始",
    pr_logout: "受付終了",
    pr_pause_op: "離席にする", pr_logout_op: "受付を終了させる",
    pr_changed: "{op}: {state}にしました。",
    pr_pause: "離席する",
    pr_unpause: "受付再開",
    pr_reason: "離席理由",
    pr_queues: "キュー（空欄: 前回と同じ）",
    pr_done: "状態を変更しました: {state}",
    pr_refused: "変更できませんでした。PBXが拒否したか、今の状態ではできない操作です（離席はログイン中のみ。初回の受付開始はキューの指定が必要）。",
    pr_no_phone: "このユーザーには内線番号がないため、受付状態を変更できません。",
    reason_break: "休憩",
    reason_after_call_work: "後処理",
    reason_training: "研修",
    reason_meeting: "会議",
    reason_lunch: "昼食",
    reason_other: "その他",
    hr_button: "手上げ（保留してスーパーバイザーを呼ぶ）",
    hr_held: "保留中: スーパーバイザーを待っています",
    hr_joined: "スーパーバイザー {who} が参加しました（お客様は保留中）",
    hr_taken_over: "スーパーバイザーが引き継ぎました",
    hr_handed_back: "お客様が戻りました。引き続き対応してください",
    hr_caller_hung_up: "保留中にお客様が電話を切りました",
    hr_cancelled: "保留できませんでした（PBXが拒否）",
    hr_hold_time: "保留 {d}",
    hr_no_call: "あなたの電話に通話がないため、保留できません。",
    hr_not_bridged: "保留できません: 現在お客様とつながっていないか、PBXが拒否しました。",
    rec_button: "この通話を録音",
    rec_on: "録音中",
    rec_all: "このクライアントの通話はすべて録音されます",
    rec_started: "録音を開始しました。",
    rec_refused: "録音できません: このクライアントは都度録音の対象外か、PBXが拒否しました。",
    rec_no_call: "あなたの電話に通話がないため、録音できません。",
    cp_open: "苦情を記録",
    cp_category: "分類",
    cat_operator_attitude: "オペレーターの態度",
    cat_operator_mistake: "オペレーターのミス",
    cat_no_callback: "折り返しがない",
    cat_service: "サービス内容",
    cat_payment: "料金・支払い",
    cat_other: "その他",
    cp_body: "内容",
    cp_named: "名指しされたオペレーター（任意）",
    cp_save: "苦情を記録する",
    cp_saved: "苦情（{id}番）を記録しました。",
    cp_bad: "記録できません: 分類を選び、内容を書いてください。",
    cp_for_call: "この通話について",
    complaints: "苦情",
    cp_status: "状態",
    any_status: "すべての状態",
    cs_open: "未対応",
    cs_in_progress: "対応中",
    cs_resolved: "解決",
    cs_closed: "完了",
    cp_resolution: "対応結果",
    cp_taken_over_by: "引継ぎ者",
    cp_update: "更新",
    cp_updated: "苦情（{id}番）: {status}にしました。",
    cp_need_resolution: "保存できません: 解決・完了には対応結果が必要です（完了した苦情は戻せません）。",
    cp_named_short: "名指し",
    cp_by: "記録者",
    cp_count_title: "苦情件数",
    cp_count_n: "{n}件",
    cp_count_all: "これまでの合計",
    cp_count_range: "表示中の期間",
    dp_title: "対応区分",
    dp_choose: "区分",
    dp_save: "区分を保存",
    dp_saved: "区分を保存しました: {code}",
    dp_wrapup: "後処理中 {d}: 区分を選んでください",
    dp_done: "区分: {code}",
    dp_none: "このクライアントには区分がありません。",
    dp_bad: "保存できません: 応答した通話に、クライアントの区分からのみ設定できます。",
    dp_not_yet: "応答後に区分を選べます。",
    dc_message_taken: "伝言承り",
    dc_info_given: "案内済み",
    dc_transferred: "転送",
    dc_callback_promised: "折り返し約束",
    dc_wrong_number: "間違い電話",
    dc_sales: "営業電話",
    dc_complaint: "苦情",
    dc_other: "その他",
    handraises: "手上げ",
    hr_take_over: "引き継ぐ",
    hr_hand_back: "オペレーターに戻す",
    hr_listen: "聞く",
    hr_wait_join: "スーパーバイザーが部屋に入ると（呼出しに出るか、モニター）引き継ぎ・ウィスパーができます。",
    hr_waiting: "スーパーバイザー待ち",
    hr_helping: "{who} が対応中",
    hr_done_take: "引き継ぎました。お客様をあなたとの通話につなぎます。",
    hr_done_back: "オペレーター {op} に戻しました。",
    hr_listen_refused: "「聞く」は使えません（{status}）: サービスが拒否しました。電話の呼出しに出て参加してください。",
    hr_refused: "できませんでした: すでに対応済みか、まだ誰も参加していないか、お客様が切断しました。",
    hr_gone: "この手上げはすでに終了しています。",
    hr_recent: "最近の対応結果",
    hr_result: "{what}: 保留 {hold}・対応 {help}",
    held_for: "保留時間",
    helper: "対応者",
    operator_col: "オペレーター",
    safety_net: "安全網",
    sn_TIMEOUT: "時間内に応答なし",
    sn_JOINEMPTY: "ログイン中のスーパーバイザーなし",
    sn_other: "スーパーバイザー対応不可",
    sn_back: "オペレーターに戻しました",
    clear: "対応済みにする",
    cleared: "対応済みにしました。",
    presence_all: "オペレーターの受付状態",
    in_state: "経過",
    recordings: "録音",
    play: "再生",
    download: "ダウンロード",
    rec_reason_policy: "全通話録音",
    rec_reason_on_demand: "都度録音",
    rec_by: "開始者",
    call_col: "通話",
    rec_audited: "再生・ダウンロードはすべて記録されます。",
    rec_missing: "再生できません: ファイルがないか（削除済み・別サーバー）、閲覧できない録音です。",
    rec_playing: "録音（{id}番）",
    new_complaint: "新しい苦情",
    res_taken_over: "引き継ぎ",
    res_handed_back: "戻し",
    res_caller_hung_up: "お客様切断",
    res_cancelled: "保留失敗",
    hr_whisper: "ウィスパー",
    hr_listening_rung: "モニター: あなたの電話（{phone}）を呼び出しています（ミュートで参加）。",
    hr_listening_muted: "モニター: {who} をミュートにしました。",
    hr_whispering: "ウィスパー: {who} の声はオペレーターにだけ聞こえます（お客様は保留音）。",
    hr_supervise_refused: "できませんでした: PBXが拒否したか、まだ誰も部屋にいないか、あなたのユーザーに内線番号がありません。",
    seconds_short: "{n}秒",
  },
};

function chosenLanguage() {
  const stored = localStorage.getItem("lang");
  if (stored === "ja" || stored === "en") return stored;
  return (navigator.language || "ja").toLowerCase().startsWith("en") ? "en" : "ja";
}

export const lang = chosenLanguage();
document.documentElement.lang = lang;

export function setLanguage(value) {
  localStorage.setItem("lang", value);
  location.reload();
}

export function t(key, params = {}) {
  const text = (I18N[lang] && I18N[lang][key]) ?? I18N.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] ?? "").toString());
}

export function hasWord(key) {
  return key in I18N.en;
}

// Static labels are marked in the HTML (data-t="key") and written once, in the page's language.
export function translateStatic(root = document) {
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of root.querySelectorAll("[data-t-label]")) {
    node.setAttribute("aria-label", t(node.dataset.tLabel));
  }
}
translateStatic();

export function outcome(value) {
  return value === "answered" ? t("answered_o") : t(value || "unknown");
}

// A word for a code from the server (escalation reasons, ring results): never the raw code.
export function word(key, fallback = "unknown") {
  return hasWord(key) ? t(key) : t(fallback);
}

export class ApiError extends Error {
  constructor(status, data) {
    super(data.error || String(status));
    this.status = status;
    this.data = data;
  }
}

export async function api(path, options = {}) {
  const headers = { "Accept": "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["X-CSRF-Token"] = sessionStorage.getItem("csrf") || "";
  }
  let response;
  try {
    response = await fetch(path, {
      method: options.method || (options.body !== undefined ? "POST" : "GET"),
      headers, credentials: "same-origin",
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
  } catch {
    throw new ApiError(0, {});
  }
  if (response.status === 401 && !path.startsWith("/api/login")) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new ApiError(401, {});
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// What to tell a person about a failed request, in their language (the server's own error
// text is English and for scripts).
export function problem(error) {
  const status = error && error.status;
  if (status === 0) return t("err_network");
  if (status === 403) return t("err_forbidden");
  if (status === 404) return t("err_not_found");
  if (status === 409) return t("err_conflict");
  if (status === 400) return t("err_bad");
  return t("err_server");
}

// A failed action told in words that fit it: ``words`` maps a status (403, 404, 409, 400) to
// the key that says what it means for this action; 503 is the instance without a PBX link.
export function explain(error, words = {}) {
  const status = error && error.status;
  if (words[status]) return t(words[status], { status });
  if (status === 503) return t("err_no_ami");
  return problem(error);
}

// The zone times are shown in unless a row names its own: the user's (/api/me: a client
// user's client's zone, staff the company's).
let homeZone = "Asia/Tokyo";

export async function me() {
  const user = await api("/api/me");
  if (user.csrf_token) sessionStorage.setItem("csrf", user.csrf_token);
  if (user.timezone) homeZone = user.timezone;
  return user;
}

export async function clientNames() {
  const { items } = await api("/api/clients");
  return Object.fromEntries(items.map((c) => [c.code, c]));
}

export function clientName(clients, code) {
  const c = clients && code ? clients[code] : null;
  if (!c) return code || t("unknown");
  return (lang === "ja" ? c.name_ja : c.name_en) || c.name || code;
}

export function live(onEvent) {
  const source = new EventSource("/api/stream");
  for (const kind of ["call", "ring", "alert", "obligation", "resync", "handraise"]) {
    source.addEventListener(kind, (message) => onEvent(kind, JSON.parse(message.data)));
  }
  return source;
}

export function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// Durations tick on the page from a start time and the server's clock (a page whose own clock
// is off still shows the right wait).
let offsetMs = 0;
export function syncClock(serverNow) {
  if (serverNow) offsetMs = new Date(serverNow).getTime() - Date.now();
}
export function nowMs() {
  return Date.now() + offsetMs;
}

export function duration(fromIso, toMs = nowMs()) {
  if (!fromIso) return "";
  const total = Math.max(0, Math.floor((toMs - new Date(fromIso).getTime()) / 1000));
  const hours = Math.floor(total / 3600);
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function seconds(value) {
  return value === null || value === undefined ? "" : t("seconds_short", { n: Math.round(value) });
}

// Times are shown in Japan time, where the answering company works, whatever the device's
// own time zone.
// A page that knows the client's zone passes it (``zone``): a person reads the client's time.
// The wall clock of an instant in a zone, and back: the date-time input is the client's time.
function wallParts(ms, zone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms));
  return Object.fromEntries(parts.map((p) => [p.type, p.value]));
}

function offsetMinutes(ms, zone) {
  const p = wallParts(ms, zone);
  const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
}

export function inputValue(iso, zone) {
  const p = wallParts(new Date(iso).getTime(), zone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// "2026-12-02T09:30" typed in ``zone`` as ISO with that zone's offset at that moment.
export function zonedIso(value, zone) {
  const [day, clock] = value.split("T");
  const [y, mo, d] = day.split("-").map(Number);
  const [hh, mm] = clock.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, hh, mm);
  const guess = wall - offsetMinutes(wall, zone) * 60000;
  const offset = offsetMinutes(guess, zone);  // again at the guessed instant (DST changes)
  const pad = (n) => String(n).padStart(2, "0");
  const sign = offset < 0 ? "-" : "+";
  return `${day}T${pad(hh)}:${pad(mm)}:00${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

// A day range picked on a page (dates, inclusive) as the instants that bound it in ``zone``
// (the reader's by default): from its first local midnight to the midnight after its last
// day (the APIs' ``to`` is exclusive).
export function dayRange(from, to, zone = null) {
  const range = {};
  if (from) range.from = zonedIso(`${from}T00:00`, zone || homeZone);
  if (to) {
    const [y, m, d] = to.split("-").map(Number);
    const next = new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
    range.to = zonedIso(`${next}T00:00`, zone || homeZone);
  }
  return range;
}

export function time(iso, withDate = true, zone = null) {
  if (!iso) return "";
  const options = withDate
    ? { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZone: zone || homeZone }
    : { hour: "2-digit", minute: "2-digit", timeZone: zone || homeZone };
  // /api/status gives epoch seconds, the other APIs ISO 8601 strings.
  const date = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return date.toLocaleString(lang === "ja" ? "ja-JP" : "en-GB", options);
}

export function useTick(ms = 1000) {
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
}

const LINKS = {
  admin: ["wallboard", "supervisor", "worklist", "operator", "portal", "report"],
  supervisor: ["wallboard", "supervisor", "worklist", "operator", "portal", "report"],
  operator: ["operator", "worklist"],
  client: ["portal", "report"],
};

function Header({ user, page, subtitle }) {
  const other = lang === "ja" ? "en" : "ja";
  const logout = async () => {
    try { await api("/api/logout", { body: {} }); } finally { location.href = "/login"; }
  };
  return html`<header class="top">
    <h1><span class="data">${t("brand")}</span> · ${t(page)}${subtitle ? html` · <span id="subtitle">${subtitle}</span>` : ""}</h1>
    <nav aria-label=${t("nav")}>
      ${(LINKS[user.role] || []).map((name) => html`<a href=${"/" + name}
        aria-current=${name === page ? "page" : undefined}>${t(name)}</a>`)}
    </nav>
    <span class="who"><span class="data">${user.display_name || user.username}</span> (${t("role_" + user.role)})</span>
    <button type="button" class="lang" lang=${other} onClick=${() => setLanguage(other)}>
      ${other === "ja" ? "日本語" : "English"}</button>
    <button type="button" id="logout" onClick=${logout}>${t("logout")}</button>
  </header>`;
}

export function header(user, page, subtitle = "") {
  let slot = document.getElementById("header");
  if (!slot) {
    slot = document.createElement("div");
    slot.id = "header";
    document.body.prepend(slot);
  }
  render(h(Header, { user, page, subtitle }), slot);
  document.title = `${t(page)} · ${t("brand")}`;
  const denied = new URLSearchParams(location.search).get("denied");
  if (denied) {
    const note = document.createElement("p");
    note.className = "notice";
    note.id = "denied";
    note.setAttribute("role", "status");
    note.textContent = t("denied");
    slot.after(note);
  }
}

// A confirmation in a <dialog>: focus stays in it, Escape cancels, the answer is a promise.
export function confirmDialog(message, confirmLabel = t("confirm")) {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "confirm";
    const text = document.createElement("p");
    text.textContent = message;
    const yes = document.createElement("button");
    yes.type = "button"; yes.className = "primary danger"; yes.textContent = confirmLabel;
    const no = document.createElement("button");
    no.type = "button"; no.textContent = t("cancel_action");
    const row = document.createElement("p");
    row.className = "buttons";
    row.append(no, yes);
    dialog.append(text, row);
    document.body.append(dialog);
    const finish = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    yes.addEventListener("click", () => finish(true));
    no.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => { event.preventDefault(); finish(false); });
    dialog.showModal();
    no.focus();
  });
}
