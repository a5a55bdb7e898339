import { Api } from '../shared/api';
import { tokenSource } from '../shared/auth';
import { onMessageSend } from './onsend';

/**
 * The on-send runtime. Classic Outlook on Windows loads this file alone (no page, Office.onReady not awaited, no
 * modules) and wants absolute URLs in fetch, so the server's origin is the one this script was loaded from.
 */
const scriptSrc = typeof document !== 'undefined' && document.currentScript instanceof HTMLScriptElement ? document.currentScript.src : '';
const base = scriptSrc ? new URL(scriptSrc).origin : typeof location !== 'undefined' ? location.origin : '';

function onMessageSendHandler(event: Office.MailboxEvent): void {
  const api = new Api({ base, token: tokenSource(Office, base) });
  void onMessageSend(event, { office: Office, api });
}

Office.actions.associate('onMessageSendHandler', onMessageSendHandler);
