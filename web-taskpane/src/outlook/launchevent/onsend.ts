import type { Api } from '../shared/api';
import { Source, TokenHeader, type OutlookMe, type RegisterRequest, type RegisterResponse } from '../shared/contract';
import { describeFailure } from '../shared/failure';
import { officeCall, recipientsOf } from '../shared/office';
import { copyToken } from '../shared/tokens';
import { readTrackChoice } from '../shared/tracking';

/** How long the server may take, all requests together, before the mail goes untracked. Outlook allows far more
 *  (a "taking longer" dialog after 5 s, a time-out at 5 min), but a person pressed Send: we never hold it longer. */
export const ServerDeadlineMs = 5000;

export const UntrackedNoticeKey = 'emailtracking-untracked';

/** A refused or failed Microsoft sign-in (401, 403, Office SSO or MSAL errors): the pane says why and what to do. */
export const SignInRefusedNotice = 'EmailTracking did not accept your Microsoft sign-in, so this email was sent untracked. Open the EmailTracking pane to see why.';

export interface SendDeps {
  office: typeof Office;
  api: Api;
  deadlineMs?: number;
}

export type SendOutcome =
  | { tracked: true; messageId: string; token: string }
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
    return { tracked: true, messageId: registered.id, token };
  } finally {
    controller.abort();
  }
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
