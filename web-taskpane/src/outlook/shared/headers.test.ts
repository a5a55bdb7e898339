import { describe, expect, it } from 'vitest';
import { parseHeaders, trackingTokenFromHeaders } from './headers';
import { copyToken, lastPixelToken, pixelToken } from './tokens';

const token = 'AbCdEfGhIjKlMnOpQrStUv_-';

describe('parseHeaders', () => {
  it('unfolds continuation lines, lower-cases names and keeps repeated headers in order', () => {
    const h = parseHeaders(
      'Received: from a.example\r\n\tby b.example; Sat, 28 Nov 2026 10:00:00 +0000\r\n' +
      'Subject: A long\r\n subject line\r\nReceived: from c.example\r\nX-Thing:value\r\n\r\nbody: not a header\r\n');
    expect(h.get('received')).toEqual(['from a.example by b.example; Sat, 28 Nov 2026 10:00:00 +0000', 'from c.example']);
    expect(h.get('subject')).toEqual(['A long subject line']);
    expect(h.get('x-thing')).toEqual(['value']);
    expect(h.has('body')).toBe(false);
  });

  it('accepts LF-only line ends and skips lines that are not headers', () => {
    const h = parseHeaders('garbage line\nTo: a@example.com\nFrom: b@example.com\n');
    expect([...h.keys()]).toEqual(['to', 'from']);
  });
});

describe('trackingTokenFromHeaders', () => {
  it('finds the token whatever the case of the header name', () => {
    expect(trackingTokenFromHeaders(`Subject: Hi\r\nX-ET-Token: ${token}\r\nTo: a@example.com\r\n`)).toBe(token);
  });

  it('finds a folded value', () => {
    expect(trackingTokenFromHeaders(`x-et-token:\r\n ${token}\r\n`)).toBe(token);
  });

  it('ignores malformed values and answers the first well-formed one', () => {
    const other = 'ZZZZZZZZZZZZZZZZZZZZZZZZ';
    expect(trackingTokenFromHeaders(`x-et-token: short\r\nx-et-token: ${other}\r\nx-et-token: ${token}\r\n`)).toBe(other);
  });

  it('answers null without the header, or for an empty block', () => {
    expect(trackingTokenFromHeaders('Subject: Hi\r\n')).toBeNull();
    expect(trackingTokenFromHeaders('')).toBeNull();
  });
});

describe('tokens', () => {
  it('reads the token from a pixel URL, with or without a path base', () => {
    expect(pixelToken(`https://t.example.com/o/${token}.gif`)).toBe(token);
    expect(pixelToken(`https://t.example.com/et/o/${token}.gif`)).toBe(token);
    expect(pixelToken(`https://t.example.com/c/${token}`)).toBeNull();
    expect(pixelToken(`https://t.example.com/o/not-a-token.gif`)).toBeNull();
    expect(pixelToken('::not a url')).toBeNull();
  });

  it("prefers the copy's own token field when the server sends one", () => {
    const other = 'ZZZZZZZZZZZZZZZZZZZZZZZZ';
    const copy = { id: '1', recipients: [], messageId: '<m@x>', html: '', pixelUrl: `https://t/o/${token}.gif`, links: [] };
    expect(copyToken(copy)).toBe(token);
    expect(copyToken({ ...copy, token: other })).toBe(other);
    expect(copyToken({ ...copy, pixelUrl: 'https://t/none' })).toBeNull();
  });
});

describe('lastPixelToken', () => {
  const older = 'ZyXwVuTsRqPoNmLkJiHgFe_-';
  it("takes the last pixel of the body: the email's own comes after the quoted mail it answers", () => {
    expect(lastPixelToken([`https://t.example/o/${older}.gif`, 'cid:logo', `https://t.example/o/${token}.gif`, 'https://cdn.example/banner.png'])).toBe(token);
  });
  it('finds none among images that are not our pixels', () => {
    expect(lastPixelToken([])).toBeNull();
    expect(lastPixelToken(['', 'data:image/gif;base64,R0lGOD', 'https://t.example/o/short.gif', `https://t.example/c/${token}`])).toBeNull();
  });
});
