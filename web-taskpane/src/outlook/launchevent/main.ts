import { Api } from '../shared/api';
import { tokenSource } from '../shared/auth';
import { onMessageSend } from './onsend';

/**
 * The on-send runtime. Classic Outlook on Windows loads this file alone (no page, no document, no location,
 * Office.onReady not awaited, no modules) and wants absolute URLs in fetch. The server writes its own origin in place
 * of this placeholder as it serves the file (`LaunchEventScript`); elsewhere the origin this script was loaded from
 * does as well.
 */
const servedFrom: string = '__ET_SERVER_ORIGIN__';
const scriptSrc = typeof document !== 'undefined' && document.currentScript instanceof HTMLScriptElement ? document.currentScript.src : '';
const base = /^https?:\/\/[^/]+$/.test(servedFrom) ? servedFrom
  : scriptSrc ? new URL(scriptSrc).origin
  : typeof location !== 'undefined' ? location.origin : '';

function onMessageSendHandler(event: Office.MailboxEvent): void {
  const api = new Api({ base, token: tokenSource(Office, base) });
  void onMessageSend(event, { office: Office, api });
}

Office.actions.associate('onMessageSendHandler', onMessageSendHandler);
