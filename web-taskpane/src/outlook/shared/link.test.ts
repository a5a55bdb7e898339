import { describe, expect, it } from 'vitest';
import '../../../../tests/EmailTracking.Tests/Browser/Outlook/office-double.js';
import type { OfficeDoubleConfig } from '../../../../tests/EmailTracking.Tests/Browser/Outlook/office-double.js';
import { ApiError } from './api';
import { errorText } from './dom';
import { describeFailure, type Failure } from './failure';
import { openLinkPage, untilLinked, type LinkPrompt } from './link';

const linkA = 'https://et.example.com/outlook/link?t=first';
const linkB = 'https://et.example.com/outlook/link?t=second';

function office(sets: OfficeDoubleConfig['requirementSets'] = { Mailbox: '1.13', DialogApi: '1.2' }, extra: Partial<OfficeDoubleConfig> = {}) {
  return globalThis.OfficeDouble.create({ mode: 'compose', requirementSets: sets, ...extra });
}

const notLinked = (linkUrl: string | null) =>
  new ApiError(403, 'This Microsoft account is not linked to an EmailTracking user.', 'kflynn@personal.test is not …', 'not-linked', linkUrl);

const describe_ = (e: unknown) => describeFailure(e, errorText);

/** A prompt that records what the pane would show, and lets the test press its buttons. */
function recordingPrompt() {
  const shown: Failure[] = [];
  const notes: string[] = [];
  let hidden = false;
  let buttons: { open: () => void; retry: () => void } | null = null;
  const prompt: LinkPrompt = {
    show(f, open, retry) { shown.push(f); buttons = { open, retry }; },
    note(text) { notes.push(text); },
    hide() { hidden = true; },
  };
  return {
    prompt, shown, notes,
    get hidden() { return hidden; },
    open() { buttons!.open(); },
    retry() { buttons!.retry(); },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('describeFailure with a link page', () => {
  it('offers the person to link the account themselves when the server gives a link, and keeps the admin’s words otherwise', () => {
    const f = describe_(notLinked(linkA));
    expect(f.linkUrl).toBe(linkA);
    expect(f.problem).toBe('not-linked');
    expect(f.text).toMatch(/link it: sign in to EmailTracking in the window that opens and confirm/);
    const old = describe_(notLinked(null));
    expect(old.linkUrl).toBeNull();
    expect(old.text).toMatch(/Ask your EmailTracking administrator to add this address/);
  });
});

describe('openLinkPage', () => {
  it('opens the page in an Office dialog and says when the person closed it', async () => {
    const o = office();
    let closed = 0;
    expect(await openLinkPage(o.Office, linkA, () => { closed++; }, () => { throw new Error('no window expected'); })).toBe('dialog');
    expect(o.dialogUrl()).toBe(linkA);
    expect(o.calls.find((c) => c.api === 'ui.displayDialogAsync')?.args[0]).toBe(linkA);
    expect(closed).toBe(0);
    o.closeDialog();
    await tick();
    expect(closed).toBe(1);
  });

  it('opens a new window where the client has no dialogs, or the dialog failed, and says when the window was blocked', async () => {
    const opened: string[] = [];
    expect(await openLinkPage(office({ Mailbox: '1.13' }).Office, linkA, () => {}, (u) => { opened.push(u); return {}; })).toBe('window');
    const failing = office(undefined, { failures: { 'ui.displayDialogAsync': { name: 'Display Dialog Error', message: 'Pop-up blocked.', code: 12009 } } });
    expect(await openLinkPage(failing.Office, linkB, () => {}, (u) => { opened.push(u); return {}; })).toBe('window');
    expect(opened).toEqual([linkA, linkB]);
    expect(await openLinkPage(office({ Mailbox: '1.13' }).Office, linkA, () => {}, () => null)).toBe('blocked');
  });
});

describe('untilLinked', () => {
  it('shows the prompt, opens the link, and goes on with the answer once the account is linked and the dialog closed', async () => {
    const o = office();
    const p = recordingPrompt();
    let linked = false;
    let attempts = 0;
    const attempt = async () => {
      attempts++;
      if (!linked) throw notLinked(linkB);
      return { email: 'flynn@encom.test' };
    };
    const result = untilLinked(o.Office, describe_(notLinked(linkA)), attempt, p.prompt, describe_);
    expect(p.shown.map((f) => f.linkUrl)).toEqual([linkA]);

    p.open();
    await tick();
    expect(o.dialogUrl()).toBe(linkA);
    expect(p.notes.at(-1)).toMatch(/confirm the link; then close it\.$/);

    // Closed before linking: asked again, still not linked, and the prompt now offers the server's fresh link.
    o.closeDialog();
    await tick();
    expect(attempts).toBe(1);
    expect(p.shown.map((f) => f.linkUrl)).toEqual([linkA, linkB]);
    expect(p.notes.at(-1)).toMatch(/Not linked yet/);
    p.open();
    await tick();
    expect(o.dialogUrl()).toBe(linkB);

    linked = true;
    o.closeDialog();
    expect(await result).toEqual({ email: 'flynn@encom.test' });
    expect(attempts).toBe(2);
    expect(p.hidden).toBe(true);
  });

  it('tries again when the person presses Try again (a window, not a dialog), once at a time', async () => {
    const o = office({ Mailbox: '1.13' });
    const p = recordingPrompt();
    const windows: string[] = [];
    let attempts = 0;
    let answer: ((v: string) => void) | null = null;
    const attempt = () => { attempts++; return new Promise<string>((r) => { answer = r; }); };
    const result = untilLinked(o.Office, describe_(notLinked(linkA)), attempt, p.prompt, describe_, (u) => { windows.push(u); return {}; });
    p.open();
    await tick();
    expect(windows).toEqual([linkA]);
    expect(p.notes.at(-1)).toMatch(/press Try again\.$/);
    p.retry();
    p.retry();
    expect(attempts).toBe(1);
    answer!('ok');
    expect(await result).toBe('ok');
  });

  it('shows a refusal the person cannot link their way out of without a link button', async () => {
    const p = recordingPrompt();
    void untilLinked(office().Office, describe_(notLinked(linkA)), () => Promise.reject(new ApiError(403, 'The account is locked.', '', 'locked')),
      p.prompt, describe_);
    p.retry();
    await tick();
    expect(p.shown.at(-1)).toMatchObject({ problem: 'locked', linkUrl: null });
    expect(p.notes.at(-1)).toBe('');
  });
});
