// Times. The pages write each one as <time datetime="…Z">2026-11-29 14:05:00 UTC</time>, which is right without
// script; here its text becomes the reader's own time, in their browser's time zone and language ("29 Nov 2026, 09:05"
// in British English), and the exact UTC time becomes its tooltip. A time marked data-zone="utc" is in UTC on purpose
// (a sequence's next sends, shown with the recipient's own time beneath): it keeps its text and gets the reader's
// time as its tooltip. Rows the live feed adds make their times with Times.element, so they read the same.
const Times = (function () {
  "use strict";
  const local = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

  function utc(d) {
    return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function show(t) {
    const d = new Date(t.dateTime);
    if (Number.isNaN(d.getTime())) return;
    if (t.dataset.zone === "utc") {
      t.textContent = utc(d);
      t.title = "Your time: " + local.format(d);
    } else {
      t.textContent = local.format(d);
      t.title = utc(d);
    }
  }

  /** A new time element for an ISO 8601 instant, shown as the page's own are. */
  function element(iso) {
    const t = document.createElement("time");
    t.dateTime = iso;
    show(t);
    return t;
  }

  /** Shows the times in a part of the page that came after it loaded (rows the server rendered again). */
  function localize(scope) {
    scope.querySelectorAll("time[datetime]").forEach(show);
  }

  localize(document);
  return { element, localize };
})();

// Text from outside the team (addresses, names, subjects, URLs, documents' names, a machine's reasons) among the page's
// own words, as Display.Isolated and Display.Exact write it: in a <bdi>, so that its direction (an Arabic name, or a
// U+202E RIGHT-TO-LEFT OVERRIDE put there to disguise) cannot turn round the words beside it. What would let an override
// out of the <bdi> in Chromium (a closing U+2069 the text did not open, a paragraph separator) shows as U+FFFD; in an
// address, a URL or a machine's text every invisible formatting character does, so that none can show as another.
const Bidi = (function () {
  "use strict";
  const breaks = /[\u001C-\u001E\u0085\u2029]/u;
  const hidden = /[\p{Cf}\u001C-\u001E\u0085\u2029]/gu;

  function contained(text) {
    let open = 0;
    let out = "";
    for (const ch of text) {
      if (ch === "\u2066" || ch === "\u2067" || ch === "\u2068") open++;
      else if (ch === "\u2069" && open > 0) open--;
      else if (ch === "\u2069" || breaks.test(ch)) { out += "\uFFFD"; continue; }
      out += ch;
    }
    return out;
  }

  /** The text with every invisible formatting character shown as U+FFFD, for where no element can isolate it (a tooltip). */
  function plain(text) {
    return String(text ?? "").replace(hidden, "\uFFFD");
  }

  function bdi(cls, text) {
    const b = document.createElement("bdi");
    if (cls) b.className = cls;
    b.textContent = text;
    return b;
  }

  /** A name, a subject, a document's name: isolated, as written. */
  function isolated(text) { return bdi("", contained(String(text ?? ""))); }

  /** An address, a URL, a machine's text: isolated, and exactly what it is. */
  function exact(text) { return bdi("exact", plain(text)); }

  return { isolated, exact, plain };
})();

// Times typed in forms (a share link's expiry): the page writes a datetime-local field's value in UTC and names UTC
// beside it (.local-zone), which is right without script. Here the field shows the browser's own time, the page names
// the browser's time zone, and each such form sends its offset from UTC for the date typed (getTimezoneOffset, in a
// data-zone-offset field), so the server reads the time as the user's own, summer time included.
(function () {
  "use strict";
  const fields = document.querySelectorAll("input[type=datetime-local][data-local-time]");
  if (fields.length === 0) return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time";
  const pad = (n) => String(n).padStart(2, "0");
  const local = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  fields.forEach((input) => {
    const d = input.value ? new Date(input.value + "Z") : null;
    if (d && !Number.isNaN(d.getTime()) && d.getFullYear() > 9999) {
      // The latest time there is (31 December 9999 UTC) is in the year 10000 east of UTC. A browser may show that or
      // leave the field empty; either way it cannot be read back (new Date gives NaN, the server cannot parse it),
      // and saving the link's other settings was refused or, from the empty field, removed the expiry. Such a field
      // stays in UTC, says so, and its form sends offset 0.
      input.dataset.zone = "utc";
      const note = document.createElement("span");
      note.className = "small muted field-zone";
      note.textContent = " UTC";
      input.after(note);
      if (input.getAttribute("aria-label")) input.setAttribute("aria-label", "Expires (UTC)");
      return;
    }
    if (d && !Number.isNaN(d.getTime())) input.value = local(d);
    if (input.getAttribute("aria-label")) input.setAttribute("aria-label", `Expires (${zone})`);
  });
  document.querySelectorAll(".local-zone").forEach((label) => { label.textContent = zone; });
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    const offset = form.querySelector("input[data-zone-offset]");
    if (!offset) return;
    const input = Array.from(form.elements).find((e) => e instanceof HTMLInputElement && e.matches("[data-local-time]"));
    // A date and time without a zone ("2027-01-15T18:00") is read as the browser's local time.
    const d = input && input.value ? new Date(input.value) : null;
    if (input && input.dataset.zone === "utc") offset.value = "0";
    else offset.value = d && !Number.isNaN(d.getTime()) ? String(d.getTimezoneOffset()) : "";
  });
})();

// Destructive forms ask first. A form (or the button that submits it) with data-confirm="…" shows that sentence —
// what will happen, in the product's words — and is sent only if the user agrees. One listener on the document, so
// every page gets it without script of its own (the CSP allows no inline handlers).
(function () {
  "use strict";
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    const question = (ev.submitter && ev.submitter.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) ev.preventDefault();
  });
})();

// A form posts once. Pressed again while its answer is on its way (a double click, or a second click on a slow
// answer), it posted again and the server did it twice: two webhooks (the first one's signing secret never shown), two
// documents, two API tokens, or a member added whose initial password was never shown (the second post was told the
// address is taken). A form that asked first and was not confirmed (above), or that the page's own script held back
// (Compose), was not sent, and stays free; so does one that opens elsewhere (a preview in a new tab). Shown again from
// the browser's history, the page's forms can be sent again.
(function () {
  "use strict";
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || ev.defaultPrevented) return;
    const method = ((ev.submitter && ev.submitter.getAttribute("formmethod")) || form.getAttribute("method") || "get").toLowerCase();
    const target = (ev.submitter && ev.submitter.getAttribute("formtarget")) || form.getAttribute("target") || "";
    if (method !== "post" || (target && target !== "_self")) return;
    if (form.dataset.posting === "true") { ev.preventDefault(); return; }
    form.dataset.posting = "true";
    form.setAttribute("aria-busy", "true");
  });
  window.addEventListener("pageshow", (ev) => {
    if (!ev.persisted) return;
    document.querySelectorAll("form[data-posting]").forEach((form) => {
      delete form.dataset.posting;
      form.removeAttribute("aria-busy");
    });
  });
})();

// A refused form comes back with its problems, announced as alerts: the focus goes to the first, scrolled into view,
// so that a keyboard or screen-reader user starts there rather than at the top of the page (or, on the sign-in page, in
// the email field, past the reason). A long form's problem can be a screen away from where the user pressed, as the
// Team page's are, above the members' table and far from the form to add one.
(function () {
  "use strict";
  const first = document.querySelector("main .errors[role=alert], main [role=alert] > .field-errors, #send-problem, #link-problem, #upload-problem, #attach-again");
  if (!first) return;
  const alert = first.matches("[role=alert]") ? first : first.parentElement;
  alert.tabIndex = -1;
  alert.focus({ preventScroll: true });
  alert.scrollIntoView({ block: "center" });
})();

// Copy buttons: a button with data-copy="…" puts that text on the clipboard and says so (the document page's share
// links). Without the clipboard (a page not served over HTTPS), the text beside it is selected for the reader to copy.
(function () {
  "use strict";
  document.addEventListener("click", (ev) => {
    const button = ev.target instanceof Element ? ev.target.closest("button[data-copy]") : null;
    if (!button) return;
    const text = button.dataset.copy;
    const said = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 2000); };
    const select = () => { const input = button.parentElement && button.parentElement.querySelector("input.copy"); if (input) input.select(); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(said, select);
    else select();
  });
})();

// Live activity: server-sent events from /api/feed. The page renders what happened up to data-after (events) and
// data-changes (verdict changes); the stream continues from there and the browser resumes with Last-Event-ID after a
// drop, so nothing is missed or doubled. An "activity" event is new; a "verdict" event takes back a person's open or
// click that this page counted (a scanner's burst of clicks, an image proxy's repeat, the sender's own view).
(function () {
  "use strict";
  const root = document.querySelector("[data-feed]");
  if (!root) return;
  const list = document.getElementById("feed");
  const status = document.getElementById("live-status");
  const showMachines = root.dataset.machines === "true";
  const onlyMessage = root.dataset.message || null;
  const seenChanges = new Set();
  /** The verdict each event that came live had (or has since had), by id. */
  const liveVerdicts = new Map();
  const seen = new Set(Array.from(document.querySelectorAll("[data-event-id]")).map((e) => e.dataset.eventId));

  const inboundWords = { reply: "reply", "auto-reply": "auto-reply", bounce: "bounce", complaint: "complaint", receipt: "receipt" };
  const verdictWords = { human: "human", self: "you", "proxy-prefetch": "proxy prefetch", scanner: "security scanner", bot: "bot" };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // A document's name, isolated from the words around it.
  function documentName(item) {
    return item.document ? Bidi.isolated(item.document) : "a document";
  }

  // A message's own timeline names the action without its object (the page is the message's), as Display.Verb: the
  // words, and the document's name among them, to append.
  function verb(item) {
    if (item.kind === "open") return ["opened"];
    if (item.kind === "click") return [item.honeypot ? "followed the hidden trap link" : "clicked"];
    if (item.kind === "reply") return ["replied"];
    if (item.kind === "auto-reply") return ["auto-replied"];
    if (item.kind === "bounce") return ["bounced"];
    if (item.kind === "complaint") return ["reported as spam"];
    if (item.kind === "receipt") return ["sent a receipt"];
    if (item.kind === "document-view") return ["opened ", documentName(item)];
    if (item.kind === "document-page") return ["read ", documentName(item), " — page " + item.page + " of " + item.pageCount];
    if (item.kind === "download") return ["downloaded ", documentName(item)];
    if (item.kind === "document-link") return ["followed a link in ", documentName(item), " (page " + item.page + ")"];
    return [item.kind];
  }

  const documentKinds = { "document-view": "views", "document-page": "pages", download: "downloads", "document-link": null };

  // The action with its object to follow ("… in Proposal"), for the feed, as Display.Action.
  function action(item) {
    if (item.kind === "open") return verb(item);
    if (item.kind === "reply" || item.kind === "auto-reply" || item.kind === "complaint") return [...verb(item), " to"];
    if (item.kind === "bounce") return ["bounced"];
    if (item.kind === "receipt") return [...verb(item), " for"];
    if (item.kind === "click" && !item.honeypot) return ["clicked a link in"];
    // Arriving live, a page event means the reader is on that page now.
    if (item.kind === "document-page") return ["is reading ", documentName(item), " — page " + item.page + " of " + item.pageCount + " from"];
    if (item.kind in documentKinds) return [...verb(item), " from"];
    return [...verb(item), " in"];
  }

  // Who did it, as Display.Who: a bounce is about the recipient whose address failed, not the mailer-daemon that wrote
  // it, and a receipt about the recipient who got the message; a share link's reader is named by the address they gave,
  // with how far it can be trusted (Display.Reader). The address is kept apart from the words that qualify it.
  function who(item) {
    if (item.kind === "bounce") return [item.recipient ? Bidi.exact(item.recipient) : "a recipient"];
    if (item.kind === "receipt") return [item.recipient || item.fromAddress ? Bidi.exact(item.recipient || item.fromAddress) : "a recipient"];
    if (item.fromAddress || item.recipient) return [Bidi.exact(item.fromAddress || item.recipient)];
    if (item.reader) return [Bidi.exact(item.reader), item.readerVerified ? " (verified)" : " (given by the reader, not verified)"];
    return ["someone"];
  }

  function plural(n, one, many) { return n === 1 ? "1 " + one : n + " " + many; }

  // The Documents column, worded as Display.DocumentSummary.
  function documentSummary(views, pages, downloads) {
    const parts = [];
    if (pages > 0) parts.push(plural(pages, "page", "pages") + " read");
    else if (views > 0) parts.push(views === 1 ? "opened" : "opened " + views + "×");
    if (downloads > 0) parts.push(downloads === 1 ? "downloaded" : "downloaded " + downloads + "×");
    return parts.length === 0 ? "—" : parts.join(", ");
  }

  function render(item) {
    const li = el("li", "item fresh " + item.verdict);
    li.dataset.eventId = String(item.id);
    const line = el("div");
    const person = el("strong");
    person.append(...who(item));
    if (onlyMessage) {
      // The message's timeline words each row as the page renders its own: the action, and the link's address beside it.
      line.append(person, " ", ...verb(item));
      if (item.linkUrl) {
        const url = el("span", "link-url");
        url.append(Bidi.exact(item.linkUrl));
        line.append(" ", url);
      }
      li.append(line);
    } else {
      line.append(person, " ", ...action(item), " ");
      // A document read through a share link outside any message: no message to name, the document's page instead.
      const shareLink = !item.messageId && item.contentId;
      const a = el("a");
      a.append(shareLink ? "a share link" : item.subject ? Bidi.isolated(item.subject) : "(no subject)");
      a.href = shareLink ? "/documents/" + item.contentId : "/messages/" + item.messageId;
      line.append(a);
      li.append(line);
      if (item.linkUrl) {
        const url = el("div", "small link-url");
        url.append(Bidi.exact(item.linkUrl));
        li.append(url);
      }
    }
    const meta = el("div", "small muted");
    meta.append(Times.element(item.occurredAt));
    if (inboundWords[item.kind]) {
      const b = el("span", "badge inbound " + item.kind, inboundWords[item.kind]);
      b.title = Bidi.plain(item.reason);
      meta.append(b);
    } else if (item.verdict !== "human" || onlyMessage) {
      // The message page's timeline names every verdict, a person's too, with its reason (as the page renders them).
      const b = el("span", "badge " + item.verdict, verdictWords[item.verdict] || item.verdict);
      b.title = Bidi.plain(item.reason);
      meta.append(b);
    }
    if (onlyMessage) {
      const reason = el("span", "reason");
      reason.append(Bidi.exact(item.reason));
      meta.append(" ", reason);
    }
    if (onlyMessage && showMachines && item.userAgent) {
      const ua = el("span", "ua");
      ua.append(Bidi.exact(item.userAgent));
      meta.append(" ", ua);
    }
    li.append(meta);
    return li;
  }

  // The list's rows of a message show its first recipients only (IndexModel.MaxRecipientRows), the ones who did
  // something first. When one of the others does something, the page has no row to count it in, and who the rows show
  // changes: the server renders the message's rows again, counting events up to that one. A message sent after the
  // first page loaded has no rows on it either: they are asked for the same way when something happens to it. Meanwhile
  // what arrives for the message waits, and is counted in the new rows once they are in place.
  const waiting = new Map();

  function forRows(messageId, work) {
    const queue = waiting.get(messageId);
    if (queue) queue.push(work);
    else work();
  }

  function messageRows(messageId) {
    return onlyMessage ? null : document.querySelector('tbody[data-message-id="' + messageId + '"]');
  }

  const messagesTable = document.getElementById("messages");
  const pageSize = Number(root.dataset.pageSize || "0");

  function listBodies() {
    return messagesTable ? Array.from(messagesTable.querySelectorAll("tbody.message")) : [];
  }

  // Whether a message the page does not show belongs on it: only the first page takes messages sent after it loaded,
  // and only those listed before its last message (all of them while it is not full).
  function belongsOnThisPage(item) {
    if (onlyMessage || !messagesTable || root.dataset.firstPage !== "true" || !item.listedAt) return false;
    const bodies = listBodies();
    if (bodies.length < pageSize) return true;
    return Date.parse(item.listedAt) > Date.parse(bodies[bodies.length - 1].dataset.at);
  }

  // A message's rows, new to the page, in their place by send time; the page's last message goes to the next page
  // when this one is full, and "Showing" and the Older link say so.
  function addMessage(fresh) {
    const at = Date.parse(fresh.dataset.at);
    const bodies = listBodies();
    const before = bodies.find((b) => Date.parse(b.dataset.at) < at);
    if (before) before.before(fresh);
    else messagesTable.append(fresh);
    document.querySelector(".messages .empty")?.remove();
    messagesTable.closest(".table-scroll").hidden = false;
    const now = listBodies();
    if (now.length > pageSize) {
      now[now.length - 1].remove();
      now.pop();
      olderLink(now[now.length - 1].dataset.cursor);
    }
    let showing = document.getElementById("showing");
    if (!showing) {
      showing = el("p", "muted small");
      showing.id = "showing";
      showing.dataset.total = "0";
      messagesTable.closest(".table-scroll").before(showing);
    }
    const total = Number(showing.dataset.total) + 1;
    showing.dataset.total = String(total);
    showing.textContent = "Showing 1–" + now.length + " of " + plural(total, "message", "messages");
  }

  function olderLink(cursor) {
    let pager = document.getElementById("pager");
    if (!pager) {
      pager = el("nav", "pager");
      pager.id = "pager";
      pager.setAttribute("aria-label", "Pages of messages");
      messagesTable.closest(".table-scroll").after(pager);
    }
    let older = pager.querySelector("a[rel=next]");
    if (!older) {
      older = el("a", "chip", "Older →");
      older.rel = "next";
      pager.append(older);
    }
    const params = new URLSearchParams(location.search);
    params.delete("newer");
    params.delete("older");
    params.set("older", cursor);
    older.setAttribute("href", "/?" + params.toString());
  }

  async function renderRows(item, place) {
    const queue = [];
    waiting.set(item.messageId, queue);
    try {
      const params = new URLSearchParams({ handler: "Rows", message: item.messageId, upTo: String(item.id) });
      if (showMachines) params.set("machines", "true");
      if (root.dataset.scope === "team") params.set("scope", "team");
      const res = await fetch("/?" + params.toString(), { cache: "no-store", headers: { Accept: "text/html" } });
      if (res.ok) {
        const t = document.createElement("template");
        t.innerHTML = await res.text();
        const fresh = t.content.querySelector("tbody.message");
        if (fresh && fresh.dataset.messageId === item.messageId) {
          Times.localize(fresh);
          place(fresh);
        }
      }
    } catch (e) {
      // Not reached (the server restarting, say): the rows stay as they were, and a reload shows the rest.
    } finally {
      waiting.delete(item.messageId);
      queue.forEach((work) => work());
    }
  }

  function recipientRow(item) {
    const scope = document.querySelector('[data-message-id="' + item.messageId + '"]') || (onlyMessage === item.messageId ? document : null);
    if (!scope) return null;
    return (item.recipientId && scope.querySelector('[data-recipient-id="' + item.recipientId + '"]')) || scope.querySelector('[data-recipient-id=""]');
  }

  function showLast(row, word, iso) {
    if (!iso) row.dataset.latest = "";
    else if (!row.dataset.latest || Date.parse(iso) >= Date.parse(row.dataset.latest)) row.dataset.latest = iso;
    const last = row.querySelector(".last");
    if (!last) return;
    let span;
    if (iso) {
      span = el("span", "", word + " ");
      span.append(Times.element(iso));
    } else {
      span = el("span", "muted", "not opened yet");
    }
    last.querySelector("span")?.replaceWith(span);
  }

  // "Replied, but no open was seen" under a recipient who answered without loading the pixel, as the pages write it
  // (Counts.RepliedNeverOpened): shown while the row is replied (data-replied) and counts no open, gone once one counts.
  const repliedHint = "Replied, but no open was seen: their mail client blocks images, so opens cannot be tracked for them.";

  function showRepliedHint(row) {
    const opens = row.querySelector(".opens");
    const wanted = row.dataset.replied === "true" && opens && Number(opens.textContent) === 0;
    const hint = row.querySelector(".hint-replied");
    if (!wanted) { hint?.remove(); return; }
    if (hint) return;
    const note = el("div", "hint-replied", repliedHint);
    note.setAttribute("role", "note");
    (row.querySelector(".recipient") || row.cells[0]).append(note);
  }

  // An answer changes the message page's Replied column as the page words it: a person's reply is "yes" whatever came
  // before; a bounce, unless they replied; an auto-reply, only when nothing else is known.
  function answered(row, item) {
    const cell = row.querySelector(".replied");
    const now = cell ? cell.textContent.trim() : "";
    if (item.kind === "reply" && item.verdict === "human") {
      row.dataset.replied = "true";
      if (cell) cell.textContent = "yes";
      showRepliedHint(row);
    } else if (cell && item.kind === "bounce" && now !== "yes") {
      cell.textContent = "bounced";
    } else if (cell && item.kind === "auto-reply" && now === "—") {
      cell.textContent = "auto-reply only";
    }
  }

  function bump(item) {
    const row = recipientRow(item);
    if (!row) {
      const body = messageRows(item.messageId);
      if (body && item.recipientId && body.querySelector(".more-recipients")) {
        renderRows(item, (fresh) => { if (body.isConnected) body.replaceWith(fresh); });
      }
      return;
    }
    if (item.kind in inboundWords) { answered(row, item); arrange(row); return; }
    const cls = item.kind === "open" ? ".opens" : item.kind === "click" ? ".clicks" : null;
    const cell = cls && row.querySelector(cls);
    if (cell) cell.textContent = String(Number(cell.textContent) + 1);
    if (cls) showLast(row, item.kind === "open" ? "opened" : "clicked", item.occurredAt);
    if (item.kind in documentKinds) {
      const docs = row.querySelector(".doc-activity");
      const field = documentKinds[item.kind];
      if (docs && field) {
        docs.dataset[field] = String(Number(docs.dataset[field] || "0") + 1);
        const span = el("span", "", documentSummary(Number(docs.dataset.views), Number(docs.dataset.pages), Number(docs.dataset.downloads)));
        docs.replaceChildren(span);
      }
      showLast(row, "read a document", item.occurredAt);
    }
    const first = row.querySelector(".first");
    if (first && item.kind === "open" && first.textContent.trim() === "—") first.replaceChildren(Times.element(item.occurredAt));
    if (item.kind === "open") showRepliedHint(row);
    arrange(row);
  }

  // The rows of a message with more recipients than the list shows are in the order IndexModel.ShownRecipients gives
  // them: those who did something first, the latest first, then the others in the message's order. Put back in that
  // order when one of them does something, as a reload would show them.
  function arrange(row) {
    const body = row.closest("tbody.message");
    const more = body && body.querySelector(".more-recipients");
    if (!more) return;
    const rows = Array.from(body.querySelectorAll("tr[data-order]"));
    const active = (r) => (r.dataset.latest || r.dataset.replied === "true" ? 1 : 0);
    const latest = (r) => (r.dataset.latest ? Date.parse(r.dataset.latest) : -Infinity);
    rows.sort((a, b) => (active(b) - active(a)) || (latest(b) - latest(a)) || (Number(a.dataset.order) - Number(b.dataset.order)));
    const subject = body.querySelector("td.subject");
    rows.forEach((r) => body.insertBefore(r, more));
    if (subject && rows[0]) rows[0].prepend(subject);
  }

  // A counted open or click is taken back: one less, and the last activity as the server now has it.
  function unbump(change) {
    const row = recipientRow(change);
    if (!row) return;
    const cell = row.querySelector(change.kind === "open" ? ".opens" : ".clicks");
    if (cell) cell.textContent = String(Math.max(0, Number(cell.textContent) - 1));
    const click = change.lastClickAt, open = change.lastOpenAt, doc = change.lastDocumentAt;
    const latest = [["opened", open], ["clicked", click], ["read a document", doc]]
      .filter((x) => x[1])
      .reduce((best, x) => (!best || new Date(x[1]) >= new Date(best[1]) ? x : best), null);
    if (latest) showLast(row, latest[0], latest[1]);
    else showLast(row, "opened", null);
    row.dataset.latest = latest ? latest[1] : "";
    const first = row.querySelector(".first");
    if (first) first.replaceChildren(change.firstOpenAt ? Times.element(change.firstOpenAt) : "—");
    showRepliedHint(row);
  }

  // What "show" would add, named apart as Display.HiddenWords names it: the sender's own views are no machine's.
  function hiddenWords(machines, own) {
    const m = machines === 1 ? "1 machine event" : machines + " machine events";
    const o = own + " of your own views";
    return own === 0 ? m : machines === 0 ? o : m + " and " + o;
  }

  // One more machine event, or one more of the sender's own views (verdict self), in a note that counts both apart.
  function noteOneMore(note, own) {
    const machines = Number(note.dataset.machines || "0") + (own ? 0 : 1);
    const mine = Number(note.dataset.own || "0") + (own ? 1 : 0);
    note.dataset.machines = String(machines);
    note.dataset.own = String(mine);
    return hiddenWords(machines, mine);
  }

  // The message list counts machine opens and clicks per recipient apart, and the sender's own apart from both:
  // "+N" beside the count when machines are shown, "N machine events and N of your own views hidden" under the last
  // activity when not.
  function setApartOneMore(item) {
    const documentEvent = item.kind in documentKinds;
    if (onlyMessage || (item.kind !== "open" && item.kind !== "click" && !documentEvent)) return;
    const row = recipientRow(item);
    if (!row) return;
    const own = item.verdict === "self";
    if (showMachines) {
      if (documentEvent) return;
      const cell = row.querySelector(item.kind === "open" ? ".opens" : ".clicks")?.parentElement;
      if (!cell) return;
      const cls = own ? "own" : "machine";
      let span = cell.querySelector("." + cls);
      if (!span) {
        span = el("span", cls, "+0");
        span.title = (own ? "your own " : "machine ") + item.kind + "s";
        // The machines' count first, the sender's own after it, as the page renders them.
        const next = own ? null : cell.querySelector(".own");
        if (next) cell.insertBefore(span, next); else cell.append(span);
        span.before(" ");
      }
      span.textContent = "+" + (Number(span.textContent.replace("+", "")) + 1);
      return;
    }
    const last = row.querySelector(".last");
    if (!last) return;
    let note = last.querySelector(".machine-note");
    if (!note) {
      note = el("div", "muted small machine-note");
      last.append(note);
    }
    note.textContent = noteOneMore(note, own) + " hidden";
  }

  function hiddenOneMore(own) {
    const note = document.getElementById("hidden-note");
    const words = document.getElementById("hidden-words");
    if (!note || !words) return;
    words.textContent = noteOneMore(note, own);
    note.hidden = false;
  }

  function onVerdict(ev) {
    const change = JSON.parse(ev.data);
    if (seenChanges.has(change.change)) return;
    seenChanges.add(change.change);
    if (onlyMessage && change.messageId !== onlyMessage) return;
    // The server sends a change only for an event this page was shown as a person's; an event that came live with
    // another verdict is not uncounted again, whatever arrives.
    const known = liveVerdicts.get(String(change.id));
    if (known !== undefined && known !== change.from) return;
    if (known !== undefined) liveVerdicts.set(String(change.id), change.verdict);
    if (change.from === "human" && change.verdict !== "human" && (change.kind === "open" || change.kind === "click")) {
      forRows(change.messageId, () => {
        // Rows rendered again after the page loaded already count the changes up to theirs.
        const body = messageRows(change.messageId);
        if (body && Number(body.dataset.countedChanges || "0") >= change.change) return;
        if (body && body.querySelector(".more-recipients")) {
          // Who did something decides who is shown: one shown may now have done nothing, and one not shown may take
          // their place. The server puts the rows together again, counting what this page was sent.
          const sent = Number((cursor || "").split(":")[0]) || Number(root.dataset.after || "0");
          renderRows({ messageId: change.messageId, id: sent }, (fresh) => { if (body.isConnected) body.replaceWith(fresh); });
          return;
        }
        unbump(change);
        setApartOneMore(change);
      });
    }
    const li = list.querySelector('[data-event-id="' + change.id + '"]');
    if (!li) return;
    if (!showMachines) {
      li.remove();
      hiddenOneMore(change.verdict === "self");
      return;
    }
    li.classList.remove(change.from);
    li.classList.add(change.verdict);
    const b = el("span", "badge " + change.verdict, verdictWords[change.verdict] || change.verdict);
    b.title = Bidi.plain(change.reason);
    const old = li.querySelector(".badge");
    if (old) old.replaceWith(b);
    else (li.querySelector(".small.muted") || li).append(b);
    const reason = li.querySelector(".reason");
    if (reason) reason.replaceChildren(Bidi.exact(change.reason));
  }

  function onActivity(ev) {
    const item = JSON.parse(ev.data);
    const id = String(item.id);
    if (seen.has(id)) return;
    seen.add(id);
    liveVerdicts.set(id, item.verdict);
    if (onlyMessage && item.messageId !== onlyMessage) return;
    const human = item.verdict === "human";
    const shown = human || item.kind === "auto-reply" || item.kind === "bounce" || item.kind === "complaint" || item.kind === "receipt";
    // A share link's read outside any message has no rows in the list of messages to count it in.
    if (item.messageId) forRows(item.messageId, () => {
      if (!onlyMessage && !messageRows(item.messageId)) {
        // Its rows, when it belongs here, count this event already.
        if (belongsOnThisPage(item)) renderRows(item, (fresh) => { if (!messageRows(item.messageId)) addMessage(fresh); });
        return;
      }
      if (human || item.kind in inboundWords) bump(item);
      else setApartOneMore(item);
    });
    if (!shown && !showMachines) { hiddenOneMore(item.verdict === "self"); return; }
    const empty = document.getElementById("feed-empty");
    if (empty) empty.remove();
    list.prepend(render(item));
  }

  // EventSource resumes by itself after a dropped connection, but not after an answer other than the stream: a proxy's
  // 502 or 503 while the server restarts or is redeployed, a 500 while the database is away. It then closes for good.
  // So the page asks the feed itself what it answers: a refusal (signed out, no longer allowed, a cursor this database
  // never gave) stops the updates and says why; anything else is tried again, a little later each time, from the last
  // event received (its id is the feed's cursor, E:C), as EventSource would have with Last-Event-ID.
  //
  // A tab the reader does not see holds no stream: over HTTP/1.1 a browser opens at most six connections to a server,
  // and six tabs of the web app, each with its stream, left none for a seventh tab or for the page's own requests. A
  // hidden tab lets its stream go and, shown again, continues from its last event, catching up on what it missed.
  let cursor = null;
  let source = null;
  let failures = 0;
  let ended = false;
  let retry = null;

  function feedUrl() {
    const params = new URLSearchParams({ after: root.dataset.after || "0", changes: root.dataset.changes || "0" });
    const at = cursor ? cursor.split(":") : null;
    if (at && at.length === 2) { params.set("after", at[0]); params.set("changes", at[1]); }
    if (root.dataset.scope === "team") params.set("scope", "team");
    return "/api/feed?" + params.toString();
  }

  function received(handler) {
    return (ev) => {
      if (ev.lastEventId) cursor = ev.lastEventId;
      handler(ev);
    };
  }

  function reconnecting() {
    if (status) { status.classList.remove("on"); status.title = "reconnecting"; }
    document.body.dataset.live = "off";
  }

  function connect() {
    clearTimeout(retry);
    retry = null;
    if (source) source.close();
    source = null;
    if (ended) return;
    if (document.visibilityState === "hidden") { paused(); return; }
    source = new EventSource(feedUrl());
    source.addEventListener("activity", received(onActivity));
    source.addEventListener("verdict", received(onVerdict));
    source.addEventListener("open", () => {
      failures = 0;
      if (status) { status.classList.add("on"); status.title = "live"; }
      document.body.dataset.live = "on";
    });
    const mine = source;
    source.addEventListener("error", () => {
      if (mine !== source) return;
      reconnecting();
      if (mine.readyState === EventSource.CLOSED && !ended) closed();
    });
    // The server ended the stream for good (the account was locked, left the team, lost its role…): said on the page,
    // instead of a dot that would read "reconnecting" for ever.
    source.addEventListener("end", (ev) => {
      let reason = "";
      try { reason = JSON.parse(ev.data).reason || ""; } catch (e) { reason = ""; }
      stopped(reason);
    });
  }

  async function closed() {
    source.close();
    source = null;
    let refusal = null;
    try {
      const ask = new AbortController();
      const res = await fetch(feedUrl(), { headers: { Accept: "text/event-stream" }, cache: "no-store", signal: ask.signal });
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        refusal = res.status === 401 ? "you are signed out." : "";
        try { refusal = (await res.json()).title || refusal; } catch (e) { /* no problem document: the words above */ }
      }
      // Only the answer was wanted: the stream itself is opened again below.
      ask.abort();
    } catch (e) {
      // The server could not be reached: tried again below.
    }
    if (ended) return;
    if (refusal !== null) { stopped(refusal || "the server no longer sends this page's updates."); return; }
    failures++;
    clearTimeout(retry);
    retry = setTimeout(connect, Math.min(30000, 1000 * 2 ** Math.min(failures, 5)));
  }

  function paused() {
    if (status) { status.classList.remove("on"); status.title = "paused while the tab is hidden"; }
    document.body.dataset.live = "paused";
  }

  document.addEventListener("visibilitychange", () => {
    if (ended) return;
    if (document.visibilityState === "hidden") {
      clearTimeout(retry);
      retry = null;
      if (source) source.close();
      source = null;
      paused();
    } else if (!source && retry === null) {
      connect();
    }
  });

  connect();

  function stopped(reason) {
    ended = true;
    clearTimeout(retry);
    if (source) source.close();
    if (document.body.dataset.live === "stopped") return;
    document.body.dataset.live = "stopped";
    const text = "Live updates stopped" + (reason ? ": " + reason : ".") + " Reload the page to see what is new.";
    if (status) { status.classList.remove("on"); status.title = text; }
    const note = el("p", "live-stopped", text);
    note.setAttribute("role", "status");
    const heading = status ? status.closest("h2") : null;
    if (heading) heading.after(note); else root.prepend(note);
  }
})();

// An unsent Compose draft, kept in the tab's sessionStorage from the moment the form is posted until the server has
// answered it with a page of its own. A post that never reached the Compose page (the session had ended — the password
// changed elsewhere, an administrator's lock — and the server sent the browser to sign in, or a form too large, or the
// network) lost what was typed; the next time this tab opens Compose, for the same user, the draft is put back (below).
// Kept: the addresses, subject, body, options and the form's key (so that a post which did get through is not sent
// twice), and the names and sizes of files; never a file's content, which a page cannot keep or give back to a file
// field: the user is asked to attach those again. Files the server already kept with the form (an hour) go again by
// their ids. Cleared on the sent message's own page, when the Compose page answers the post itself, and on sign-out.
const Drafts = (function () {
  "use strict";
  const key = "et-compose-draft";

  function read() {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function save(draft) {
    try { sessionStorage.setItem(key, JSON.stringify(draft)); } catch (e) { /* storage off or full: the post goes on without it */ }
  }
  function clear() {
    try { sessionStorage.removeItem(key); } catch (e) { /* nothing kept */ }
  }

  // The message a draft became: its page has the draft's key as its id.
  const sent = document.querySelector("[data-feed][data-message]");
  const kept = read();
  if (sent && kept && kept.key === sent.dataset.message) clear();
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form instanceof HTMLFormElement && /\/logout$/i.test(new URL(form.action, location.href).pathname)) clear();
  });
  return { read, save, clear };
})();

// The Compose page's editor: bold, italic, links and bulleted lists in a contenteditable box, with the browser's own
// editing commands. Without script the page has a plain-text box instead; with it, that box goes and the editor's HTML
// is posted in the hidden Html field (the server keeps only these formats, and shows a refused draft here again).
// Sending disables the form's button, so a double click posts once; the form's key makes a second post one message anyway.
(function () {
  "use strict";
  const form = document.getElementById("compose-form");
  if (!form) return;
  const editor = document.getElementById("editor");
  const body = document.getElementById("Body");
  const html = document.getElementById("Html");
  const text = document.getElementById("Text");
  const keyField = form.querySelector("input[name=Key]");

  // A draft whose post did not reach this page (see Drafts): back in the form, unless the server answered the post with
  // this form itself (the same key), which shows the draft as it has it.
  const draft = Drafts.read();
  let restored = null;
  if (draft && draft.key === keyField.value) Drafts.clear();
  else if (draft && draft.user === form.dataset.user) restored = draft;
  else if (draft) Drafts.clear();
  if (restored) {
    keyField.value = restored.key;
    ["To", "Cc", "Bcc", "Subject"].forEach((name) => { form.elements[name].value = restored[name] || ""; });
    html.value = restored.html || "";
    text.value = restored.text || "";
    const choose = (select, value) => {
      const option = select && Array.from(select.options).find((o) => o.value === value && !o.disabled);
      if (option) select.value = value;
    };
    choose(document.getElementById("MailboxId"), restored.mailboxId);
    choose(document.getElementById("DocumentId"), restored.documentId);
    document.getElementById("PerRecipient").checked = restored.perRecipient !== false;
    // Files the server kept with the form: listed as it lists them, to go again by their ids (the server says so if
    // the hour they are kept for is over). Files only the browser had are named, to attach again.
    const keptFiles = (restored.kept || []).filter((f) => f && f.id);
    if (keptFiles.length > 0 && !document.getElementById("kept-files")) {
      const ul = Object.assign(document.createElement("ul"), { className: "attachment-list", id: "kept-files" });
      keptFiles.forEach((f) => {
        const li = document.createElement("li");
        li.dataset.size = String(Number(f.size) || 0);
        li.append(Object.assign(document.createElement("input"), { type: "hidden", name: "Kept", value: f.id }), "Kept: ",
          Object.assign(document.createElement("span"), { className: "attachment-name", textContent: f.name }), " ",
          Object.assign(document.createElement("span"), { className: "muted small", textContent: "(" + size(Number(f.size) || 0) + ")" }), " — ",
          Object.assign(document.createElement("span"), { className: "remove-kept" }));
        ul.appendChild(li);
      });
      document.querySelector("#attachments legend").after(ul);
    }
    const note = Object.assign(document.createElement("div"), { className: "notice problem", id: "draft-restored" });
    note.setAttribute("role", "alert");
    note.append(Object.assign(document.createElement("strong"), { textContent: "Your message was not sent." }),
      " It is back as you left it (you may have been signed out before it went): check it, then send it again.");
    const again = (restored.files || []).filter((f) => f && f.name);
    if (again.length > 0) {
      const files = Object.assign(document.createElement("div"), { id: "draft-attach-again" });
      files.append(Object.assign(document.createElement("strong"), { textContent: "Attach your files again: " }),
        again.map((f) => `${f.name} (${size(Number(f.size) || 0)})`).join(", "), ". The browser does not keep files that were not sent.");
      note.appendChild(files);
    }
    const discard = Object.assign(document.createElement("button"), { type: "button", className: "link", id: "discard-draft", textContent: "Discard this draft" });
    discard.addEventListener("click", () => { Drafts.clear(); location.assign("/compose"); });
    note.appendChild(Object.assign(document.createElement("div"), { className: "small" })).appendChild(discard);
    form.before(note);
    note.tabIndex = -1;
    note.focus({ preventScroll: true });
  }

  /** The form as it is posted, kept until the server answers it with a page (Drafts). */
  function keepDraft() {
    const keptList = document.getElementById("kept-files");
    Drafts.save({
      user: form.dataset.user,
      key: keyField.value,
      To: form.elements.To.value, Cc: form.elements.Cc.value, Bcc: form.elements.Bcc.value, Subject: form.elements.Subject.value,
      html: body.innerHTML, text: text.disabled ? "" : text.value,
      mailboxId: (document.getElementById("MailboxId") || {}).value || "",
      documentId: (document.getElementById("DocumentId") || {}).value || "",
      perRecipient: document.getElementById("PerRecipient").checked,
      kept: keptList ? Array.from(keptList.children).map((li) => ({
        id: li.querySelector("input[name=Kept]").value, name: li.querySelector(".attachment-name").textContent, size: Number(li.dataset.size),
      })) : [],
      files: files ? Array.from(files.files).map((f) => ({ name: f.name, size: f.size })) : [],
    });
  }

  // A draft that came back: the editor's HTML as the server cleaned it; a plain-text draft as its paragraphs.
  if (html.value) body.innerHTML = html.value;
  else if (text.value) {
    text.value.split(/\r?\n\r?\n/).forEach((p) => {
      const para = document.createElement("p");
      p.split(/\r?\n/).forEach((line, i) => {
        if (i > 0) para.appendChild(document.createElement("br"));
        para.appendChild(document.createTextNode(line));
      });
      body.appendChild(para);
    });
  }
  // The first line a paragraph too, as the lines after it are.
  if (!body.firstChild) body.innerHTML = "<p><br></p>";
  text.hidden = true;
  text.disabled = true;
  editor.hidden = false;
  document.querySelector("label[for=Text]").htmlFor = "";
  document.execCommand("defaultParagraphSeparator", false, "p");

  /** A link address as typed: "encom.test/grid" is taken to mean https://encom.test/grid. */
  function address(typed) {
    const t = typed.trim();
    if (!t || /^(https?:\/\/|mailto:)$/i.test(t)) return null;
    if (/^(https?:\/\/[^\s/]|mailto:[^\s])/i.test(t)) return t;
    if (/^[a-z][a-z0-9+.-]*:/i.test(t)) return null; // javascript:, data: and the like are not links to send
    if (/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(t)) return "mailto:" + t;
    return "https://" + t;
  }

  function link() {
    // The question takes the focus: the selection it was asked for is put back before the link is made.
    const selection = window.getSelection();
    const range = selection.rangeCount > 0 && body.contains(selection.anchorNode) ? selection.getRangeAt(0).cloneRange() : null;
    const typed = window.prompt("Link address (https://…)", "https://");
    if (typed === null) return;
    const url = address(typed);
    if (!url) { window.alert("That is not a web or email address."); return; }
    body.focus();
    if (range) {
      selection.removeAllRanges();
      selection.addRange(range);
    }
    if (range && !range.collapsed) {
      document.execCommand("createLink", false, url);
    } else {
      // Nothing selected: the address itself is the link's text.
      const a = document.createElement("a");
      a.href = url;
      a.textContent = typed.trim();
      document.execCommand("insertHTML", false, a.outerHTML + "&nbsp;");
    }
  }

  function run(command) {
    if (command === "link") { link(); return; }
    body.focus();
    document.execCommand(command, false, null);
  }

  editor.querySelectorAll(".toolbar button").forEach((b) => {
    // Pressing a button must not take the selection away from the text it formats.
    b.addEventListener("mousedown", (ev) => ev.preventDefault());
    b.addEventListener("click", () => run(b.dataset.command));
  });
  body.addEventListener("keydown", (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "k") { ev.preventDefault(); run("link"); }
  });

  // Where the caret (or the selection) last was in the editor: "Insert link" puts the document's link there, though
  // pressing it takes the focus away. Never in the editor: null, and the link goes at the end.
  let caret = null;
  function keepCaret() {
    const selection = window.getSelection();
    if (selection.rangeCount === 0) return;
    const range = selection.getRangeAt(0);
    if (body.contains(range.commonAncestorContainer)) caret = range.cloneRange();
  }
  document.addEventListener("selectionchange", keepCaret);
  // selectionchange comes later, as a task of its own: by then the focus may have moved to the document list or the To
  // field, and the place the caret moved to last would be lost. Taken too as each key is released and as the focus leaves.
  body.addEventListener("keyup", keepCaret);
  body.addEventListener("focusout", keepCaret);

  /** The editor's HTML with a marker where the link goes, holding the selection it replaces (the server puts the link there). */
  function htmlWithInsertMarker() {
    if (!caret || !body.contains(caret.commonAncestorContainer)) return body.innerHTML;
    const marker = document.createElement("span");
    marker.setAttribute("data-insert-link", "");
    marker.appendChild(caret.extractContents());
    caret.insertNode(marker);
    const marked = body.innerHTML;
    // The page stays as it was, should it be shown again (Back).
    marker.replaceWith(...marker.childNodes);
    body.normalize();
    return marked;
  }

  // Enter in a one-line field (To, Subject) is part of typing there, not a request to send.
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.target instanceof HTMLInputElement) ev.preventDefault();
  });

  // "Attach files": the chosen files listed with their sizes, each removable, kept in the form's file input (a
  // DataTransfer holds them, so choosing again adds rather than replaces). Over the limit, the file that crosses it is
  // named at once and the form is not sent; the server checks the same and more (names, types, programs).
  const files = document.getElementById("Files");
  const list = document.getElementById("attachment-list");
  const fieldset = document.getElementById("attachments");
  const maxBytes = Number(fieldset.dataset.maxBytes);
  const chosen = new DataTransfer();
  let attachProblem = null;

  function size(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (Math.round(bytes / 102.4) / 10) + " KB";
    return (Math.round(bytes / 104857.6) / 10) + " MB";
  }

  // Files the server kept while the form came back: they count toward the limit, and "Remove" takes them out of the form.
  const kept = document.getElementById("kept-files");
  function keptBytes() {
    return kept ? Array.from(kept.children).reduce((n, li) => n + Number(li.dataset.size), 0) : 0;
  }
  if (kept) {
    Array.from(kept.children).forEach((li) => {
      const name = li.querySelector(".attachment-name").textContent;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link-button";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + name);
      remove.addEventListener("click", () => {
        li.remove();
        if (kept.children.length === 0) kept.hidden = true;
        showFiles();
      });
      li.querySelector(".remove-kept").replaceWith(remove);
    });
  }

  function showFiles() {
    files.files = chosen.files;
    list.replaceChildren();
    let total = keptBytes();
    attachProblem = null;
    Array.from(chosen.files).forEach((file, i) => {
      total += file.size;
      if (!attachProblem && total > maxBytes) {
        attachProblem = `${file.name} takes the attachments past ${size(maxBytes)} in all (${size(total)} with it): remove it or another file.`;
      }
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "attachment-name";
      name.textContent = file.name;
      const bytes = document.createElement("span");
      bytes.className = "muted small";
      bytes.textContent = " (" + size(file.size) + ") ";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link-button";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.addEventListener("click", () => { chosen.items.remove(i); showFiles(); });
      item.append(name, bytes, remove);
      list.appendChild(item);
    });
    list.hidden = chosen.files.length === 0;
    let note = document.getElementById("attachment-problem");
    if (attachProblem) {
      if (!note) {
        // The alert is the box around the list, as the server's field errors are: on the list it would take the
        // list's role away.
        note = document.createElement("div");
        note.id = "attachment-problem";
        note.setAttribute("role", "alert");
        note.appendChild(Object.assign(document.createElement("ul"), { className: "field-errors" }));
        list.after(note);
      }
      note.firstChild.replaceChildren(Object.assign(document.createElement("li"), { textContent: attachProblem }));
    } else if (note) note.remove();
  }

  if (files && fieldset) {
    const attach = document.createElement("button");
    attach.type = "button";
    attach.id = "attach-files";
    attach.textContent = "Attach files";
    attach.addEventListener("click", () => files.click());
    files.hidden = true;
    files.before(attach);
    files.addEventListener("change", () => {
      // The input now holds only the new choice: the earlier ones are added back from the DataTransfer.
      Array.from(files.files).forEach((f) => chosen.items.add(f));
      showFiles();
    });
  }

  form.addEventListener("submit", (ev) => {
    if (form.dataset.sending === "true") { ev.preventDefault(); return; }
    if (attachProblem) { ev.preventDefault(); document.getElementById("attachment-problem").scrollIntoView({ block: "center" }); return; }
    keepDraft();
    if (ev.submitter && ev.submitter.id === "insert-document") { html.value = htmlWithInsertMarker(); return; } // comes back with the draft
    html.value = body.innerHTML;
    if (!ev.submitter || ev.submitter.id !== "send") return;
    form.dataset.sending = "true";
    const send = document.getElementById("send");
    send.disabled = true;
    send.textContent = "Sending…";
  });
  // Back to this page from the browser's history: it may be sent again (the key makes it the same message).
  window.addEventListener("pageshow", (ev) => {
    if (!ev.persisted) return;
    form.dataset.sending = "false";
    const send = document.getElementById("send");
    send.disabled = false;
    send.textContent = "Send";
  });
})();
