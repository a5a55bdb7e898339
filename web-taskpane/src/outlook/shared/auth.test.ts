import { describe, expect, it } from 'vitest';
import '../../../../tests/EmailTracking.Tests/Browser/Outlook/office-double.js';
import { tokenSource } from './auth';

describe('tokenSource', () => {
  it("uses Office's SSO token, with both prompts allowed, where nested app authentication is not supported", async () => {
    const double = globalThis.OfficeDouble.create({ requirementSets: { Mailbox: '1.13', IdentityAPI: '1.3' }, accessToken: 'sso-token' });
    const requests: string[] = [];
    const token = tokenSource(double.Office, 'https://t.example.com', async (u) => { requests.push(String(u)); return new Response('{}'); });
    expect(await token()).toBe('sso-token');
    expect(double.calls.filter((c) => c.api === 'auth.getAccessToken').map((c) => c.args[0])).toEqual([{ allowSignInPrompt: true, allowConsentPrompt: true }]);
    expect(requests).toEqual([]); // the MSAL configuration is only for NAA
  });

  it('asks the anonymous configuration endpoint first under NAA, and again after it failed', async () => {
    const double = globalThis.OfficeDouble.create({ requirementSets: { Mailbox: '1.13', NestedAppAuth: '1.1' }, accessToken: 'unused' });
    const requests: { url: string; authorization: string | null }[] = [];
    const token = tokenSource(double.Office, 'https://t.example.com', async (u, init) => {
      requests.push({ url: String(u), authorization: new Headers(init?.headers).get('Authorization') });
      return new Response('{"title":"down"}', { status: 503 });
    });
    await expect(token()).rejects.toThrow(/503/);
    await expect(token()).rejects.toThrow(/503/);
    expect(requests).toEqual([
      { url: 'https://t.example.com/api/outlook/config', authorization: null },
      { url: 'https://t.example.com/api/outlook/config', authorization: null },
    ]);
    expect(double.calls.some((c) => c.api === 'auth.getAccessToken')).toBe(false);
  });
});
