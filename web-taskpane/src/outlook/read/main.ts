import '../shared/pane.css';
import { Api } from '../shared/api';
import { tokenSource } from '../shared/auth';
import type { ActivityCounts, OutlookItem } from '../shared/contract';
import { byId, el, errorText, exact, isolated, linkPrompt, setState, showFailure, when } from '../shared/dom';
import { describeFailure } from '../shared/failure';
import { untilLinked } from '../shared/link';
import { trackingTokenFromHeaders } from '../shared/headers';
import { officeCall } from '../shared/office';
import { followSse } from '../shared/sse';
import { lastPixelToken, pixelAddresses } from '../shared/tokens';
import { changesMessage } from './live';
import { itemQuery, type BodyPixel } from './query';

/**
 * The read pane. For a tracked email the user sent: each recipient's opens, clicks, pages read, downloads and reply,
 * kept current from the live feed. For a reply to one: which tracked email it answered.
 */
async function main(): Promise<void> {
  await Office.onReady();
  const office = Office;
  const item = office.context.mailbox.item as Office.MessageRead;
  const api = new Api({ base: '', token: tokenSource(office, location.origin) });

  let headers = '';
  try {
    headers = await officeCall<string>(office, 'getAllInternetHeadersAsync', (cb) => item.getAllInternetHeadersAsync(cb));
  } catch {
    // Some clients answer nothing for a message just sent; the server can still match by Message-ID or conversation.
  }
  const headerToken = trackingTokenFromHeaders(headers);
  const query = itemQuery(headerToken, item.internetMessageId, item.conversationId, item.from?.emailAddress,
    headerToken ? null : await bodyPixel(office, item));
  const load = () => api.get<OutlookItem>(`/api/outlook/item?${query}`);

  let shown: OutlookItem;
  try {
    shown = await load();
  } catch (e) {
    const failure = describeFailure(e, errorText);
    if (!failure.linkUrl) {
      showFailure(failure);
      return;
    }
    // The person can link this Microsoft account themselves: the pane goes on once they have.
    shown = await untilLinked(office, failure, load, linkPrompt(), (x) => describeFailure(x, errorText));
  }
  render(shown);
  setState('ready');
  if (shown.kind !== 'sent') return;

  // Live: refresh when an event of this message arrives, at most one request at a time (a burst of events — a
  // recipient paging through a document — becomes one refresh after the one in flight).
  const messageId = shown.message.id;
  let inFlight = false;
  let again = false;
  const refresh = async () => {
    if (inFlight) { again = true; return; }
    inFlight = true;
    try {
      do {
        again = false;
        render(await load());
        document.body.dataset['refreshed'] = String(Number(document.body.dataset['refreshed'] ?? '0') + 1);
      } while (again);
    } catch (e) {
      byId('live').textContent = `Could not refresh: ${errorText(e)}`;
    } finally {
      inFlight = false;
    }
  };
  const live = byId('live');
  const following = new AbortController();
  const stopped = (reason: string) => {
    live.textContent = `Live updates stopped: ${reason} Open the pane again to see what is new.`;
    document.body.dataset['live'] = 'stopped';
  };
  void followSse({
    url: api.url('/api/feed'),
    headers: () => api.headers({}),
    signal: following.signal,
    onOpen: () => {
      live.textContent = 'Live: new activity shows here as it happens.';
      document.body.dataset['live'] = 'on';
      // Catch up on what the stream began after: on the first connection, what happened between the pane's load and
      // the stream's start (it starts from what happens next); after a reconnection, what it may have missed.
      void refresh();
    },
    onError: () => {
      live.textContent = 'Live updates paused; reconnecting…';
      document.body.dataset['live'] = 'off';
    },
    // Refused in a way asking again will not fix (no longer allowed, a cursor the server does not have): the stream
    // has stopped following, so the pane must not say it is reconnecting.
    onStop: (refused) => stopped(refused.message),
    onEvent: (event) => {
      if (event.event === 'end') {
        // The server ended the stream for good (the account was locked, left the team…): following again would only be
        // refused, and the pane would read "reconnecting" for ever.
        following.abort();
        stopped(endReason(event.data));
        return;
      }
      if (changesMessage(event, messageId)) void refresh();
    },
  });
}

/** The reason an `end` event gives ({"reason": "…"}), or a plain word when it cannot be read. */
function endReason(data: string): string {
  try {
    const reason = (JSON.parse(data) as { reason?: unknown }).reason;
    if (typeof reason === 'string' && reason.trim()) return reason.trim();
  } catch {
    // Not JSON: said plainly below.
  }
  return 'the server ended them.';
}

function render(shown: OutlookItem): void {
  byId('sent').hidden = shown.kind !== 'sent';
  byId('reply').hidden = shown.kind !== 'reply';
  byId('none').hidden = shown.kind !== 'none';
  if (shown.kind === 'reply') {
    renderAnswered(shown.answered);
    return;
  }
  if (shown.kind !== 'sent') return;
  const m = shown.message;
  byId('subject').replaceChildren(m.subject ? isolated(m.subject) : '(no subject)');
  byId('sent-at').textContent = (m.sentAt ? `Sent ${when(m.sentAt)}.` : 'When it was sent is not recorded.') +
    (m.perRecipient ? '' : ' One copy went to everyone: opens and clicks are counted together below.');
  // Found only by its conversation: the open email may be a reply in it (one no connected mailbox has recorded).
  const related = byId('related');
  related.hidden = shown.matchedBy !== 'conversationId';
  related.textContent = related.hidden ? '' : 'This email is in the conversation of your tracked email below; it may be a reply to it, or another email of that conversation.';
  // One shared copy (what the add-in sends) cannot tell whose open or click it was: only replies are per person.
  byId('rows').replaceChildren(...m.recipients.map((r) => row(r.address, r, m.perRecipient, exact(r.address))));
  byId('everyone').replaceChildren(row('Everyone', m.everyone, true, 'Everyone'));
}

/**
 * The tracking pixel in the item's body, for a sent email whose x-et-token header Outlook did not keep (and whose ids
 * nothing has recorded yet); the server decides from the sender and subject whether the email is the tracked one or
 * an answer quoting it.
 */
async function bodyPixel(office: typeof Office, item: Office.MessageRead): Promise<BodyPixel | null> {
  const from = item.from?.emailAddress;
  if (!from) return null;
  let html: string;
  try {
    html = await officeCall<string>(office, 'body.getAsync', (cb) => item.body.getAsync(office.CoercionType.Html, cb));
  } catch {
    return null;
  }
  const token = lastPixelToken(pixelAddresses(html));
  return token ? { token, subject: item.subject ?? '' } : null;
}

/** What each kind of answer is called, and who it came from. */
const answerWords: Record<string, { title: string; from: string }> = {
  'reply': { title: 'A reply to your tracked email', from: 'Answered by' },
  'auto-reply': { title: 'An automatic reply to your tracked email', from: 'Answered by' },
  'bounce': { title: 'Your tracked email could not be delivered', from: 'Reported by' },
  'complaint': { title: 'A spam complaint about your tracked email', from: 'Reported by' },
  'receipt': { title: 'A receipt for your tracked email (read or delivered)', from: 'Sent by' },
};

/** A received answer: which tracked email it answers (its subject and when it was sent) and who answered. */
function renderAnswered(a: Extract<OutlookItem, { kind: 'reply' }>['answered']): void {
  const words = answerWords[a.verdict] ?? answerWords['reply']!;
  byId('reply').dataset['verdict'] = a.verdict;
  byId('reply-title').textContent = words.title;
  byId('answered-subject').replaceChildren(...(a.subject ? ['"', isolated(a.subject), '"'] : ['(no subject)']));
  const sentAt = byId('answered-sent-at');
  if (a.sentAt) {
    sentAt.setAttribute('datetime', a.sentAt);
    sentAt.textContent = when(a.sentAt);
  } else {
    sentAt.removeAttribute('datetime');
    sentAt.textContent = 'not recorded';
  }
  byId('answered-from-label').textContent = words.from;
  byId('answered-from').replaceChildren(exact(a.from));
  byId('answered-note').textContent = a.verdict === 'reply'
    ? 'Open your sent email to see who opened it, clicked and read your documents.'
    : '';
}

/**
 * One recipient's row. Each figure carries its column's name (data-label): in a narrow pane the table stacks and the
 * names show above the figures (pane.css). A figure that is not known per person (one copy went to everyone) is a
 * dot, and is left out of the stacked rows. The recipient's address is shown exactly (bidi.ts): `label` names the row.
 */
function row(label: string, c: ActivityCounts, countsKnown: boolean, shown: HTMLElement | string): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset['recipient'] = label;
  const cell = (text: string, name: string, known: boolean, className = '') => {
    const td = el('td', known ? text : '·', (className + (known ? '' : ' unknown')).trim());
    td.dataset['label'] = name;
    if (!known) td.title = 'One copy went to everyone: see Everyone';
    return td;
  };
  const n = (v: number, key: string, name: string) => {
    const td = cell(String(v), name, countsKnown, 'n');
    td.dataset['count'] = key;
    return td;
  };
  const who = el('td', undefined, 'who');
  who.append(shown);
  tr.append(who, n(c.opens, 'opens', 'Opens'), n(c.clicks, 'clicks', 'Clicks'), n(c.pagesRead, 'pagesRead', 'Pages read'),
    n(c.downloads, 'downloads', 'Downloads'), cell(c.replied ? 'Yes' : 'No', 'Replied', true),
    cell(when(c.lastOpenAt), 'Last open', countsKnown), cell(when(c.lastClickAt), 'Last click', countsKnown));
  return tr;
}

main().catch((e: unknown) => setState('error', `EmailTracking could not start: ${errorText(e)}`));
