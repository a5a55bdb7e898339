/**
 * Linking this Microsoft account to an EmailTracking user from a pane. When the server refuses the pane's Microsoft
 * sign-in with a link page to offer (the problem's `linkUrl`: one-time, 30 minutes, made for this very account), the
 * pane shows "Link this Microsoft account to EmailTracking" and opens that page in an Office dialog (a new window
 * where the client has no dialogs). The person signs in to the web app there and confirms; when they close the
 * dialog, or press "Try again", the pane asks again and carries on where it stopped, without a reload.
 */
import type { Failure } from './failure';
import { supports } from './office';

/** What a pane shows while it waits for the account to be linked (dom.ts draws it; tests record it). */
export interface LinkPrompt {
  /** Shows the refusal: with a link button when `failure.linkUrl` is set, and always a "Try again" button. */
  show(failure: Failure, open: () => void, retry: () => void): void;
  /** A line under the buttons: what just happened. */
  note(text: string): void;
  /** The account works now: the prompt goes. */
  hide(): void;
}

/** Office's DialogEventReceived codes: the person closed the dialog, or the page in it could not be shown. */
const DialogClosed = 12006;

/**
 * Opens the link page: in an Office dialog where the client has the Dialog API (then `onClosed` runs when the person
 * closes it), else in a new browser window. Answers how it opened, or 'blocked' when neither could.
 */
export function openLinkPage(
  office: typeof Office,
  url: string,
  onClosed: () => void,
  openWindow: (url: string) => unknown = (u) => globalThis.open?.(u, '_blank'),
): Promise<'dialog' | 'window' | 'blocked'> {
  const inWindow = (): 'window' | 'blocked' => (openWindow(url) === null ? 'blocked' : 'window');
  if (!supports(office, 'DialogApi', '1.1')) return Promise.resolve(inWindow());
  return new Promise((resolve) => {
    try {
      office.context.ui.displayDialogAsync(url, { height: 70, width: 40, promptBeforeOpen: false }, (result) => {
        if (result.status !== office.AsyncResultStatus.Succeeded) {
          // A dialog already open (12007), or the person refused the pop-up (12009): a plain window still may open.
          resolve(inWindow());
          return;
        }
        result.value.addEventHandler(office.EventType.DialogEventReceived, (event) => {
          if ('error' in event && event.error === DialogClosed) onClosed();
        });
        resolve('dialog');
      });
    } catch {
      resolve(inWindow());
    }
  });
}

/**
 * Shows the link prompt for `failure` and settles with what `attempt` answers once it succeeds (tried again when the
 * dialog closes or the person presses "Try again"). A failed attempt shows its own refusal, with the fresh link the
 * server made for it: the one already opened may have been used.
 */
export function untilLinked<T>(
  office: typeof Office,
  failure: Failure,
  attempt: () => Promise<T>,
  prompt: LinkPrompt,
  describe: (e: unknown) => Failure,
  openWindow?: (url: string) => unknown,
): Promise<T> {
  return new Promise<T>((resolve) => {
    let current = failure;
    let trying = false;
    const retry = (): void => {
      if (trying) return;
      trying = true;
      prompt.note('Checking with EmailTracking…');
      attempt().then(
        (value) => {
          prompt.hide();
          resolve(value);
        },
        (e: unknown) => {
          current = describe(e);
          prompt.show(current, open, retry);
          prompt.note(current.linkUrl ? 'Not linked yet. Link it in the window, then close it or press Try again.' : '');
        },
      ).finally(() => { trying = false; });
    };
    const open = (): void => {
      const url = current.linkUrl;
      if (!url) return;
      void openLinkPage(office, url, retry, openWindow).then((how) => {
        prompt.note(how === 'blocked'
          ? `The window was blocked. Open this address in your browser, signed in to EmailTracking: ${url}`
          : 'Sign in to EmailTracking in the new window and confirm the link; then close it' + (how === 'window' ? ' and press Try again.' : '.'));
      });
    };
    prompt.show(failure, open, retry);
  });
}
