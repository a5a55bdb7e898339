// Live activity: server-sent events from /api/feed. The page renders what happened up to data-after; the stream
// continues from there and the browser resumes with Last-Event-ID after a drop, so nothing is missed or doubled.
(function () {
  "use strict";
  const root = document.querySelector("[data-feed]");
  if (!root) return;
  const list = document.getElementById("feed");
  const status = document.getElementById("live-status");
  const showMachines = root.dataset.machines === "true";
  const onlyMessage = root.dataset.message || null;
  const seen = new Set(Array.from(document.querySelectorAll("[data-event-id]")).map((e) => e.dataset.eventId));

  const inboundWords = { reply: "reply", "auto-reply": "auto-reply", bounce: "bounce", complaint: "complaint" };
  const verdictWords = { human: "human", self: "you", "proxy-prefetch": "proxy prefetch", scanner: "security scanner", bot: "bot" };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function stamp(iso) {
    return new Date(iso).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function action(item) {
    if (item.kind === "open") return "opened";
    if (item.kind === "click") return item.honeypot ? "followed the hidden trap link in" : "clicked a link in";
    if (item.kind === "reply") return "replied to";
    if (item.kind === "auto-reply") return "auto-replied to";
    if (item.kind === "bounce") return "bounced";
    if (item.kind === "complaint") return "reported as spam";
    const doc = item.document || "a document";
    if (item.kind === "document-view") return "opened " + doc + " from";
    // Arriving live, a page event means the reader is on that page now.
    if (item.kind === "document-page") return "is reading " + doc + " — page " + item.page + " of " + item.pageCount + " from";
    if (item.kind === "download") return "downloaded " + doc + " from";
    if (item.kind === "document-link") return "followed a link in " + doc + " (page " + item.page + ") from";
    return item.kind;
  }

  function render(item) {
    const li = el("li", "item fresh " + item.verdict);
    li.dataset.eventId = String(item.id);
    const line = el("div");
    // A bounce is about the recipient whose address failed, not the mailer-daemon that wrote it (as Display.Who).
    const who = item.kind === "bounce" ? (item.recipient || "a recipient") : (item.fromAddress || item.recipient || "someone");
    line.append(el("strong", "", who), " " + action(item) + " ");
    const a = el("a", "", item.subject || "(no subject)");
    a.href = "/messages/" + item.messageId;
    line.append(a);
    li.append(line);
    if (item.linkUrl) li.append(el("div", "small link-url", item.linkUrl));
    const meta = el("div", "small muted");
    const t = el("time", "", stamp(item.occurredAt));
    t.dateTime = item.occurredAt;
    meta.append(t);
    if (inboundWords[item.kind]) {
      const b = el("span", "badge inbound " + item.kind, inboundWords[item.kind]);
      b.title = item.reason;
      meta.append(b);
    } else if (item.verdict !== "human") {
      const b = el("span", "badge " + item.verdict, verdictWords[item.verdict] || item.verdict);
      b.title = item.reason;
      meta.append(b);
    }
    li.append(meta);
    return li;
  }

  function bump(item) {
    const scope = document.querySelector('[data-message-id="' + item.messageId + '"]') || (onlyMessage === item.messageId ? document : null);
    if (!scope) return;
    const row = (item.recipientId && scope.querySelector('[data-recipient-id="' + item.recipientId + '"]')) || scope.querySelector('[data-recipient-id=""]');
    if (!row) return;
    const cls = item.kind === "open" ? ".opens" : item.kind === "click" ? ".clicks" : null;
    const cell = cls && row.querySelector(cls);
    if (cell) cell.textContent = String(Number(cell.textContent) + 1);
    const last = row.querySelector(".last");
    if (last && cls) {
      const t = el("time", "", stamp(item.occurredAt));
      t.dateTime = item.occurredAt;
      const span = el("span", "", (item.kind === "open" ? "opened " : "clicked "));
      span.append(t);
      last.querySelector("span")?.replaceWith(span);
    }
  }

  function hiddenOneMore() {
    const note = document.getElementById("hidden-note");
    const count = document.getElementById("hidden-count");
    if (!note || !count) return;
    count.textContent = String(Number(count.textContent) + 1);
    note.hidden = false;
  }

  function onActivity(ev) {
    const item = JSON.parse(ev.data);
    const id = String(item.id);
    if (seen.has(id)) return;
    seen.add(id);
    if (onlyMessage && item.messageId !== onlyMessage) return;
    const human = item.verdict === "human";
    const shown = human || item.kind === "auto-reply" || item.kind === "bounce" || item.kind === "complaint";
    if (human) bump(item);
    if (!shown && !showMachines) { hiddenOneMore(); return; }
    const empty = document.getElementById("feed-empty");
    if (empty) empty.remove();
    list.prepend(render(item));
  }

  const params = new URLSearchParams({ after: root.dataset.after || "0" });
  if (root.dataset.scope === "team") params.set("scope", "team");
  const source = new EventSource("/api/feed?" + params.toString());
  source.addEventListener("activity", onActivity);
  source.addEventListener("open", () => { if (status) { status.classList.add("on"); status.title = "live"; } document.body.dataset.live = "on"; });
  source.addEventListener("error", () => { if (status) { status.classList.remove("on"); status.title = "reconnecting"; } document.body.dataset.live = "off"; });
})();
