import { describe, expect, it } from 'vitest';
import '../../../../tests/EmailTracking.Tests/Browser/Outlook/office-double.js';
import type { OfficeDoubleConfig, OfficeDoubleInstance } from '../../../../tests/EmailTracking.Tests/Browser/Outlook/office-double.js';
import { Api } from '../shared/api';
import type { RegisterRequest } from '../shared/contract';
import { onMessageSend, SignInRefusedNotice, UntrackedNoticeKey } from './onsend';

const token = 'Tk3n_Tk3n_Tk3n_Tk3n_Tk3n';
const base = 'https://t.example.com';

interface Recorded {
  method: string;
  url: string;
  authorization: string | null;
  body: unknown;
}

/**
 * The server as the on-send flow sees it: answers like MessagesApi.Register (the tracked HTML with the pixel
 * appended and links rewritten, the copy's pixel URL), and /api/outlook/me with the user's default.
 */
function server(options: { trackByDefault?: boolean; status?: number; problem?: object; hang?: boolean } = {}) {
  const requests: Recorded[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const headers = new Headers(init?.headers);
    requests.push({ method: init?.method ?? 'GET', url, authorization: headers.get('Authorization'), body: init?.body ? JSON.parse(String(init.body)) : null });
    if (options.hang) {
      return new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
    }
    if (options.status) return new Response(JSON.stringify(options.problem ?? { title: 'Down for maintenance' }), { status: options.status });
    if (url === `${base}/api/outlook/me`) {
      return Response.json({ email: 'flynn@encom.test', plan: 'team', trackByDefault: options.trackByDefault ?? true, contentAllowed: true, maxRecipients: 50 });
    }
    if (url === `${base}/api/messages` && init?.method === 'POST') {
      const r = JSON.parse(String(init.body)) as RegisterRequest;
      const html = r.html.replace(/href="([^"]+)"/g, `href="${base}/c/LinkLinkLinkLinkLinkLink"`) + `<img src="${base}/o/${token}.gif" width="1" height="1" alt="">`;
      return Response.json({
        id: '6f1c', perRecipient: false,
        copies: [{ id: 'c1', recipients: [...r.to, ...r.cc, ...r.bcc], messageId: '<x@t.example.com>', html, pixelUrl: `${base}/o/${token}.gif`, links: [] }],
      }, { status: 201 });
    }
    if (url === `${base}/api/messages/6f1c/sent` && init?.method === 'POST') return new Response(null, { status: 204 });
    return new Response('', { status: 404 });
  };
  return { requests, fetch };
}

type Item = NonNullable<OfficeDoubleConfig['item']>;

function compose(extra: Partial<OfficeDoubleConfig> = {}, item: Item = {}): OfficeDoubleInstance {
  return globalThis.OfficeDouble.create({
    mode: 'compose',
    userEmail: 'flynn@encom.test',
    accessToken: 'api-token-1',
    requirementSets: { Mailbox: '1.13', IdentityAPI: '1.3' },
    item: {
      subject: 'Grid proposal',
      to: [{ displayName: 'Alan Bradley', emailAddress: 'alan@encom.test' }],
      cc: [{ displayName: 'lora@encom.test', emailAddress: 'lora@encom.test' }],
      bcc: [],
      from: { displayName: 'Kevin Flynn', emailAddress: 'flynn@encom.test' },
      body: '<p>See <a href="https://encom.test/grid">the grid</a>.</p>',
      sessionData: { 'emailtracking.track': 'on' },
      ...item,
    },
    ...extra,
  });
}

function run(double: OfficeDoubleInstance, srv: ReturnType<typeof server>, deadlineMs = 5000) {
  const office = double.Office;
  const api = new Api({ base, token: () => office.auth.getAccessToken({ allowSignInPrompt: true, allowConsentPrompt: true }), fetch: srv.fetch });
  // As Outlook does: the runtime associates the handler, then Send dispatches the event to it.
  office.actions.associate('onMessageSendHandler', (event: Office.MailboxEvent) => { void onMessageSend(event, { office, api, deadlineMs }); });
  return double.send();
}

const apis = (d: OfficeDoubleInstance) => d.calls.map((c) => c.api);

describe('onMessageSend', () => {
  it('registers the message, puts the tracked HTML in the body, stamps the token header, then lets the mail go', async () => {
    const double = compose();
    const srv = server();
    const before = Date.now();
    const completed = await run(double, srv);

    expect(completed).toEqual({ allowEvent: true });
    expect(srv.requests).toHaveLength(1);
    const [post] = srv.requests;
    expect(post?.method).toBe('POST');
    expect(post?.url).toBe(`${base}/api/messages`);
    expect(post?.authorization).toBe('Bearer api-token-1');
    expect(post?.body).toEqual({
      from: 'flynn@encom.test', subject: 'Grid proposal', to: ['"Alan Bradley" <alan@encom.test>'], cc: ['lora@encom.test'], bcc: [],
      html: '<p>See <a href="https://encom.test/grid">the grid</a>.</p>', perRecipient: false, sentAt: expect.any(String), source: 'outlook-addin',
    });
    // Sent now: the server's timing rules measure from it (a click seconds after sending is a scanner's).
    const sentAt = Date.parse((post?.body as RegisterRequest).sentAt);
    expect(sentAt).toBeGreaterThanOrEqual(before);
    expect(sentAt).toBeLessThanOrEqual(Date.now());

    const state = double.state();
    expect(state.body).toContain(`<img src="${base}/o/${token}.gif"`);
    expect(state.body).toContain(`href="${base}/c/LinkLinkLinkLinkLinkLink"`);
    expect(state.headers).toEqual({ 'x-et-token': token });
    expect(state.notifications).toEqual({});

    const calls = apis(double);
    expect(calls.filter((c) => c === 'body.setAsync')).toHaveLength(1);
    expect(double.calls.find((c) => c.api === 'body.setAsync')?.args[1]).toEqual({ coercionType: 'html' });
    expect(double.calls.find((c) => c.api === 'auth.getAccessToken')?.args[0]).toEqual({ allowSignInPrompt: true, allowConsentPrompt: true });
    // The event is completed last: nothing after it is sure to run.
    expect(calls.at(-1)).toBe('event.completed');
    expect(calls.indexOf('internetHeaders.setAsync')).toBeLessThan(calls.indexOf('event.completed'));
    expect(calls.indexOf('body.setAsync')).toBeLessThan(calls.indexOf('event.completed'));
  });

  it('sends untouched, without asking the server, when the user switched tracking off for this email', async () => {
    const double = compose({}, { sessionData: { 'emailtracking.track': 'off' } });
    const srv = server();
    expect(await run(double, srv)).toEqual({ allowEvent: true });
    expect(srv.requests).toEqual([]);
    expect(apis(double)).not.toContain('body.setAsync');
    expect(apis(double)).not.toContain('internetHeaders.setAsync');
  });

  it("follows the user's default when the pane never set a choice", async () => {
    for (const trackByDefault of [true, false]) {
      const double = compose({}, { sessionData: {} });
      const srv = server({ trackByDefault });
      expect(await run(double, srv)).toEqual({ allowEvent: true });
      expect(srv.requests.map((r) => r.url)).toEqual(trackByDefault ? [`${base}/api/outlook/me`, `${base}/api/messages`] : [`${base}/api/outlook/me`]);
      expect('x-et-token' in double.state().headers).toBe(trackByDefault);
    }
  });

  it('lets the mail go untracked, and says so, when the server answers an error', async () => {
    const double = compose();
    const completed = await run(double, server({ status: 503 }));
    expect(completed).toEqual({ allowEvent: true });
    const state = double.state();
    expect(state.body).toBe('<p>See <a href="https://encom.test/grid">the grid</a>.</p>');
    expect(state.headers).toEqual({});
    expect(state.notifications[UntrackedNoticeKey]?.type).toBe('errorMessage');
    expect(state.notifications[UntrackedNoticeKey]?.message).toMatch(/untracked/);
    expect(state.notifications[UntrackedNoticeKey]?.message).not.toBe(SignInRefusedNotice);
    const calls = apis(double);
    expect(calls.indexOf('notificationMessages.addAsync')).toBeLessThan(calls.indexOf('event.completed'));
  });

  it('lets the mail go untracked when the server does not answer before the deadline', async () => {
    const double = compose();
    const started = Date.now();
    const completed = await run(double, server({ hang: true }), 300);
    const took = Date.now() - started;
    expect(completed).toEqual({ allowEvent: true });
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
    expect(double.state().headers).toEqual({});
    expect(double.state().notifications[UntrackedNoticeKey]?.message).toMatch(/did not answer in time/);
  });

  it('lets the mail go untracked when no token can be had (the user declined to sign in)', async () => {
    const double = compose({ accessTokenError: { code: 13001, name: 'User is not signed in', message: 'No one is signed in.' } });
    const srv = server();
    expect(await run(double, srv)).toEqual({ allowEvent: true });
    expect(srv.requests).toEqual([]);
    expect(double.state().notifications[UntrackedNoticeKey]?.message).toBe(SignInRefusedNotice);
  });

  it('says the sign-in was refused, not that the server is down, when the Microsoft account is not linked (403) or not accepted (401)', async () => {
    const refusals = [
      { status: 403, problem: { title: 'This Microsoft account is not linked to an EmailTracking user.', detail: '…', reason: 'not-linked' } },
      { status: 401, problem: {} },
    ];
    for (const refusal of refusals) {
      const double = compose();
      expect(await run(double, server(refusal))).toEqual({ allowEvent: true });
      const notice = double.state().notifications[UntrackedNoticeKey];
      expect(notice?.type).toBe('errorMessage');
      expect(notice?.message).toBe(SignInRefusedNotice);
      expect(notice?.message?.length).toBeLessThanOrEqual(150);
      expect(double.state().headers).toEqual({});
    }
  });

  it('still completes when Office refuses the body, and tells the user', async () => {
    const double = compose({ failures: { 'body.setAsync': { name: 'DataExceedsMaximumSize', message: 'too big', code: 9000 } } });
    expect(await run(double, server())).toEqual({ allowEvent: true });
    expect(double.state().headers).toEqual({});
    expect(double.state().notifications[UntrackedNoticeKey]).toBeDefined();
  });

  it('registers nothing again when a Send it let go was stopped by something else and the user presses Send again', async () => {
    const double = compose();
    const srv = server();
    expect(await run(double, srv)).toEqual({ allowEvent: true });
    const first = double.state();
    expect(first.headers).toEqual({ 'x-et-token': token });

    // Another add-in's on-send check blocked that Send: Outlook keeps the item as our handler left it. Send again.
    const pressed = Date.now();
    expect(await double.send()).toEqual({ allowEvent: true });

    // One registration, one pixel: the item goes as the first Send tracked it; only the time it leaves is told.
    expect(srv.requests.map((r) => `${r.method} ${r.url}`)).toEqual([`POST ${base}/api/messages`, `POST ${base}/api/messages/6f1c/sent`]);
    const sentAt = Date.parse((srv.requests[1]?.body as { sentAt: string }).sentAt);
    expect(sentAt).toBeGreaterThanOrEqual(pressed);
    expect(sentAt).toBeLessThanOrEqual(Date.now());
    const second = double.state();
    expect(second.body).toBe(first.body);
    expect(second.body.split(`/o/${token}.gif`)).toHaveLength(2);
    expect(second.headers).toEqual({ 'x-et-token': token });
    expect(second.notifications).toEqual({});
    expect(apis(double).filter((c) => c === 'body.setAsync')).toHaveLength(1);
    expect(apis(double).at(-1)).toBe('event.completed');
  });

  it('lets the item go as tracked when the server cannot be told the later send time', async () => {
    const double = compose();
    expect(await run(double, server())).toEqual({ allowEvent: true });
    const first = double.state();
    const down = server({ status: 503 });
    const office = double.Office;
    const api = new Api({ base, token: () => office.auth.getAccessToken({ allowSignInPrompt: true, allowConsentPrompt: true }), fetch: down.fetch });
    let outcome: unknown;
    office.actions.associate('onMessageSendHandler', (event: Office.MailboxEvent) => { void onMessageSend(event, { office, api }).then((o) => { outcome = o; }); });
    expect(await double.send()).toEqual({ allowEvent: true });
    await new Promise((r) => setTimeout(r, 0));
    expect(outcome).toEqual({ tracked: true, again: true, messageId: '6f1c', token });
    expect(down.requests.map((r) => r.url)).toEqual([`${base}/api/messages/6f1c/sent`]);
    expect(double.state().body).toBe(first.body);
    expect(double.state().notifications).toEqual({});
  });

  it('registers an item anew when its body no longer carries the pixel our header names', async () => {
    const stale = 'Old0_Old0_Old0_Old0_Old0';
    const double = compose({}, { internetHeaders: { 'x-et-token': stale }, body: '<p>A new text, pasted over the tracked one.</p>' });
    const srv = server();
    expect(await run(double, srv)).toEqual({ allowEvent: true });
    expect(srv.requests.map((r) => r.url)).toEqual([`${base}/api/messages`]);
    expect(double.state().headers).toEqual({ 'x-et-token': token });
    expect(double.state().body).toContain(`/o/${token}.gif`);
  });

  it('sends a plain-text body as escaped HTML', async () => {
    const double = compose({}, { bodyType: 'text', body: 'a < b & c' });
    const srv = server();
    await run(double, srv);
    expect((srv.requests[0]?.body as RegisterRequest).html).toBe('<div style="white-space:pre-wrap">a &lt; b &amp; c</div>');
  });
});
