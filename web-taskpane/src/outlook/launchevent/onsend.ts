import type { Api } from '../shared/api';
import { Source, TokenHeader, type OutlookMe, type RegisterRequest, type RegisterResponse } from '../shared/contract';
import { describeFailure } from '../shared/failure';
import { officeCall, recipientsOf } from '../shared/office';
import { copyToken, looksLikeToken, pixelAddresses, pixelToken } from '../shared/tokens';
import { readTrackChoice } from '../shared/tracking';

/** How long the server may take, all requests together, before the mail goes untracked. Outlook allows far more
 *  (a "taking longer" dialog after 5 s, a time-out at 5 min), but a person pressed Send: we never hold it longer. */
export const ServerDeadlineMs = 5000;

export const UntrackedNoticeKey = 'emailtracking-untracked';

/** Session data (see tracking.ts) in which a Send that registered the item keeps what it registered: `{ token, messageId }`. */
export const RegisteredKey = 'emailtracking.registered';

/** A refused or failed Microsoft sign-in (401, 403, Office SSO or MSAL errors): the pane says why and what to do. */
export const SignInRefusedNotice = 'EmailTracking did not accept your Microsoft sign-in, so this email was sent untracked. Open the EmailTracking pane to see why.';

export interface SendDeps {
  office: typeof Office;
  api: Api;
  deadlineMs?: number;
}

export type SendOutcome =
  | { tracked: true; messageId: string; token: string }
  /** Registered by an earlier Send of this item that something else stopped: sent as it was tracked then. */
  | { tracked: true; again: true; messageId: string | null; token: string }
  | { tracked: false; reason: 'off' | 'failed'; error?: string };

class DeadlineError extends Error {}

/**
 * OnMessageSend (SendMode SoftBlock). When tracking is on for this item: registers the message with the server, puts
 * the tracked HTML it answers in the body, stamps the copy's token in the x-et-token header, and lets the
 * mail go. Whatever fails — the server down, an error answer, no answer within the deadline, an Office call — the
 * mail still goes, untracked, and the user is told by a notification on the item. The event is always completed
 * with allowEvent: true, and last: code after `completed` may never run.
 */
export async function onMessageSend(event: Office.MailboxEvent, deps: SendDeps): Promise<SendOutcome> {
  const { office } = deps;
  const item = office.context.mailbox.item as Office.MessageCompose;
  let outcome: SendOutcome;
  try {
    outcome = await track(item, deps);
  } catch (e) {
    const error = e instanceof DeadlineError ? 'no answer in time' : e instanceof Error ? e.message : String(e);
    outcome = { tracked: false, reason: 'failed', error };
    await tellUntracked(office, item, e instanceof DeadlineError
      ? 'EmailTracking did not answer in time: this email was sent without tracking.'
      : describeFailure(e, String).problem !== 'unreachable'
        ? SignInRefusedNotice
        : 'EmailTracking could not track this email (the server is unreachable or refused it): it was sent untracked.');
  }
  event.completed({ allowEvent: true });
  return outcome;
}

async function track(item: Office.MessageCompose, deps: SendDeps): Promise<SendOutcome> {
  const { office, api } = deps;
  // One budget for every request to the server; Office's own calls are local and not counted.
  const controller = new AbortController();
  const deadline = new Promise<never>((_, reject) => {
    const t = setTimeout(() => {
      controller.abort();
      reject(new DeadlineError());
    }, deps.deadlineMs ?? ServerDeadlineMs);
    controller.signal.addEventListener('abort', () => clearTimeout(t));
  });
  deadline.catch(() => {}); // observed below by Promise.race; never an unhandled rejection
  const server = <T>(p: Promise<T>) => Promise.race([p, deadline]);
  try {
    let on = await readTrackChoice(office, item);
    if (on === null) on = (await server(api.get<OutlookMe>('/api/outlook/me', controller.signal))).trackByDefault;
    if (!on) return { tracked: false, reason: 'off' };

    // We let an earlier Send of this item go, and something else stopped it (another add-in's on-send check): the
    // item still has our header and the tracked body. Registering it again would put a second pixel over the first
    // and count one mail as two; it goes as it was tracked, and only the time it leaves is told to the server.
    const earlier = await earlierRegistration(office, item);
    if (earlier) {
      if (earlier.messageId) {
        try {
          await server(api.post<null>(`/api/messages/${encodeURIComponent(earlier.messageId)}/sent`, { sentAt: new Date().toISOString() }, controller.signal));
        } catch {
          // The mail is tracked either way; the send time stays the first Send's.
        }
      }
      return { tracked: true, again: true, messageId: earlier.messageId, token: earlier.token };
    }

    const [subject, recipients, from, html] = await Promise.all([
      officeCall<string>(office, 'subject.getAsync', (cb) => item.subject.getAsync(cb)),
      recipientsOf(office, item),
      sender(office, item),
      bodyHtml(office, item),
    ]);
    const request: RegisterRequest = { from, subject, ...recipients, html, perRecipient: false, sentAt: new Date().toISOString(), source: Source };
    const registered = await server(api.post<RegisterResponse>('/api/messages', request, controller.signal));
    const copy = registered.copies[0];
    const token = copy ? copyToken(copy) : null;
    if (!copy || !token) throw new Error('the server answered no tracked copy with a token');
    controller.abort(); // the server has answered: stop the clock

    await officeCall<void>(office, 'body.setAsync', (cb) =>
      item.body.setAsync(copy.html, { coercionType: office.CoercionType.Html }, cb));
    await officeCall<void>(office, 'internetHeaders.setAsync', (cb) =>
      item.internetHeaders.setAsync({ [TokenHeader]: token }, cb));
    try {
      await officeCall<void>(office, 'sessionData.setAsync', (cb) =>
        item.sessionData.setAsync(RegisteredKey, JSON.stringify({ token, messageId: registered.id }), cb));
    } catch {
      // Only a later Send's correction of the send time needs it.
    }
    return { tracked: true, messageId: registered.id, token };
  } finally {
    controller.abort();
  }
}

/**
 * What an earlier Send of this item registered, when the item still carries it: our header, and that copy's pixel in
 * the body (a body the user replaced since is registered anew). The message's id is kept in the item's session data
 * by the Send that registered it.
 */
async function earlierRegistration(office: typeof Office, item: Office.MessageCompose): Promise<{ token: string; messageId: string | null } | null> {
  let headers: Record<string, string>;
  try {
    headers = await officeCall<Record<string, string>>(office, 'internetHeaders.getAsync', (cb) => item.internetHeaders.getAsync([TokenHeader], cb));
  } catch {
    return null; // a header never set is reported as a failure by some clients
  }
  const token = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === TokenHeader)?.[1]?.trim();
  if (!token || !looksLikeToken(token)) return null;
  const html = await officeCall<string>(office, 'body.getAsync', (cb) => item.body.getAsync(office.CoercionType.Html, cb));
  if (!pixelAddresses(html).some((address) => pixelToken(address) === token)) return null;
  let messageId: string | null = null;
  try {
    const kept = JSON.parse(await officeCall<string>(office, 'sessionData.getAsync', (cb) => item.sessionData.getAsync(RegisteredKey, cb))) as unknown;
    if (kept && typeof kept === 'object' && 'token' in kept && 'messageId' in kept && kept.token === token && typeof kept.messageId === 'string') {
      messageId = kept.messageId;
    }
  } catch {
    // Not kept (or not readable): the mail still goes as tracked, with the first Send's time.
  }
  return { token, messageId };
}

/** The From address: item.from (Mailbox 1.7) where the client has it, else the signed-in user's. */
async function sender(office: typeof Office, item: Office.MessageCompose): Promise<string> {
  if (item.from) {
    try {
      const d = await officeCall<Office.EmailAddressDetails>(office, 'from.getAsync', (cb) => item.from.getAsync(cb));
      if (d?.emailAddress) return d.emailAddress;
    } catch {
      // fall through to the profile
    }
  }
  return office.context.mailbox.userProfile.emailAddress;
}

/** The body as HTML. A plain-text body is sent as escaped HTML: the server tracks HTML, and the pixel needs it. */
async function bodyHtml(office: typeof Office, item: Office.MessageCompose): Promise<string> {
  const type = await officeCall<Office.CoercionType>(office, 'body.getTypeAsync', (cb) => item.body.getTypeAsync(cb));
  if (type === office.CoercionType.Html) {
    return officeCall<string>(office, 'body.getAsync', (cb) => item.body.getAsync(office.CoercionType.Html, cb));
  }
  const text = await officeCall<string>(office, 'body.getAsync', (cb) => item.body.getAsync(office.CoercionType.Text, cb));
  const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<div style="white-space:pre-wrap">${escaped}</div>`;
}

/** A notification on the item, added before the event completes (after it, nothing is sure to run). */
async function tellUntracked(office: typeof Office, item: Office.MessageCompose, message: string): Promise<void> {
  try {
    await officeCall<void>(office, 'notificationMessages.addAsync', (cb) =>
      item.notificationMessages.addAsync(UntrackedNoticeKey, {
        type: office.MailboxEnums.ItemNotificationMessageType.ErrorMessage,
        message,
      }, cb));
  } catch {
    // Telling the user is best effort; the mail goes either way.
  }
}
