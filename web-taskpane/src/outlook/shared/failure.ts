import { ApiError } from './api';

/**
 * Why a pane could not talk to the server, in words for the person at Outlook. A refused Microsoft sign-in is not
 * "could not reach": the server answered, and the person (or their admin) can do something about it.
 */
export interface Failure {
  /** For tests and styling: `sign-in` (401), the server's refusal reason (403: `not-linked`, …), or `unreachable`. */
  problem: string;
  text: string;
  /** The server's own title and detail, for whoever administers EmailTracking; '' when there is nothing more. */
  forAdmin: string;
  /** Where the person can link this Microsoft account to their EmailTracking user themselves; null when they cannot. */
  linkUrl: string | null;
}

const admin = 'your EmailTracking administrator';

/** What a 403's reason (MicrosoftSignIn.Refuse) means to the person signed in to Outlook. */
const refusals: Record<string, string> = {
  // With a link page to offer (MicrosoftSignIn gives linkUrl), the person can end these refusals themselves.
  'not-linked+link': 'This Microsoft account is not linked to an EmailTracking user yet. If you have an EmailTracking account, ' +
    `link it: sign in to EmailTracking in the window that opens and confirm. If you have none, ask ${admin}.`,
  'linked-elsewhere+link': 'Another Microsoft account is already linked to your EmailTracking user. You can link this one too: sign in ' +
    'to EmailTracking in the window that opens and confirm.',
  'no-address+link': 'Your Microsoft sign-in names no email address EmailTracking could look up. If you have an EmailTracking account, ' +
    'link it: sign in to EmailTracking in the window that opens and confirm.',
  'not-linked': `Your Microsoft account is not linked to an EmailTracking user. Ask ${admin} to add this address to your ` +
    'EmailTracking account, or to create a user for it.',
  'linked-elsewhere': `Another Microsoft account is already linked to your EmailTracking user (an account of another organisation, ` +
    `or one that was deleted and made again). Ask ${admin} to unlink it; your next sign-in then links this one.`,
  'no-account': `Your Microsoft sign-in does not name an account EmailTracking could link. Ask ${admin}.`,
  'tenant-not-allowed': `Accounts of your organisation may not sign in to this EmailTracking server. Ask ${admin}.`,
  'scope-missing': `The add-in's sign-in is not set up as this EmailTracking server expects. Ask ${admin} to check its app registration.`,
  'no-address': `Your Microsoft sign-in does not name an email address EmailTracking could look up. Ask ${admin}.`,
  'locked': 'Your EmailTracking account is locked after too many failed sign-ins. Try again later.',
};

export function describeFailure(e: unknown, errorText: (e: unknown) => string): Failure {
  if (e instanceof ApiError && e.status === 401) {
    return {
      problem: 'sign-in',
      text: 'EmailTracking did not accept your Microsoft sign-in (it may have expired). Close this pane and open it again to ' +
        `sign in afresh; if that does not help, ask ${admin}.`,
      forAdmin: [e.title, e.detail].filter(Boolean).join(': '),
      linkUrl: null,
    };
  }
  if (e instanceof ApiError && e.status === 403) {
    const reason = e.reason ?? 'forbidden';
    return {
      problem: reason,
      text: (e.linkUrl ? refusals[`${reason}+link`] : undefined) ?? refusals[reason] ?? `EmailTracking refused: ${e.title} Ask ${admin}.`,
      forAdmin: [e.title, e.detail].filter(Boolean).join(' '),
      linkUrl: e.linkUrl,
    };
  }
  if (isSignInError(e)) {
    return {
      problem: 'sign-in',
      text: `Could not sign you in to EmailTracking with your Microsoft account: ${errorText(e)}. Close this pane and open it ` +
        `again to try once more; if that does not help, ask ${admin}.`,
      forAdmin: '',
      linkUrl: null,
    };
  }
  return { problem: 'unreachable', text: `Could not reach EmailTracking: ${errorText(e)}.`, forAdmin: '', linkUrl: null };
}

/** Office SSO rejects with `{ code: 13xxx, message }` (its error codes are 13000–13999); MSAL's errors carry a string `errorCode`. */
function isSignInError(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const o = e as { code?: unknown; errorCode?: unknown };
  return (typeof o.code === 'number' && o.code >= 13000 && o.code < 14000) || (typeof o.errorCode === 'string' && o.errorCode !== '');
}
