import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { errorText } from './dom';
import { describeFailure } from './failure';

describe('describeFailure', () => {
  it('tells a person whose Microsoft account is not linked to ask their admin, and keeps the server’s words for the admin', () => {
    const f = describeFailure(new ApiError(403, 'This Microsoft account is not linked to an EmailTracking user.',
      'x@y.test is not one of any EmailTracking user’s addresses.', 'not-linked'), errorText);
    expect(f.problem).toBe('not-linked');
    expect(f.text).toMatch(/not linked to an EmailTracking user/);
    expect(f.text).toMatch(/Ask your EmailTracking administrator/);
    expect(f.text).not.toMatch(/Could not reach|403/);
    expect(f.forAdmin).toMatch(/x@y\.test/);
  });

  it('tells a person whose address is linked to another Microsoft account that their admin can unlink it', () => {
    const f = describeFailure(new ApiError(403, 'Another Microsoft account is linked to this user.',
      'x@y.test is linked to a different Microsoft account. An admin can unlink it: et users unlink-microsoft --email x@y.test',
      'linked-elsewhere'), errorText);
    expect(f.problem).toBe('linked-elsewhere');
    expect(f.text).toMatch(/Another Microsoft account is already linked/);
    expect(f.text).toMatch(/Ask your EmailTracking administrator to unlink it/);
    expect(f.forAdmin).toMatch(/et users unlink-microsoft --email x@y\.test/);
  });

  it('asks to sign in afresh on a 401, and falls back to the title for a 403 reason it does not know', () => {
    expect(describeFailure(new ApiError(401, 'HTTP 401', ''), errorText)).toMatchObject({ problem: 'sign-in' });
    expect(describeFailure(new ApiError(401, 'HTTP 401', ''), errorText).text).toMatch(/did not accept your Microsoft sign-in/);
    expect(describeFailure(new ApiError(403, 'Nope.', ''), errorText)).toMatchObject({ problem: 'forbidden', text: expect.stringMatching(/Nope\./) });
  });

  it('reads Office SSO’s plain error objects as a sign-in failure, and anything else as the server being out of reach', () => {
    const sso = describeFailure({ code: 13001, name: 'User is not signed in', message: 'No one is signed in.' }, errorText);
    expect(sso.problem).toBe('sign-in');
    expect(sso.text).toMatch(/No one is signed in\. \(13001\)/);
    expect(sso.text).not.toMatch(/object Object/);
    expect(describeFailure(new TypeError('Failed to fetch'), errorText)).toMatchObject({ problem: 'unreachable', text: 'Could not reach EmailTracking: Failed to fetch.' });
  });
});

describe('Api problems', () => {
  it('read the link page a refusal offers, and never a link that is not a web address', async () => {
    const { Api } = await import('./api');
    const answer = (linkUrl: string) => new Api({
      base: 'https://et.example.com', token: async () => 't',
      fetch: async () => new Response(JSON.stringify({ title: 'Not linked.', reason: 'not-linked', linkUrl }), { status: 403 }),
    });
    await expect(answer('https://et.example.com/outlook/link?t=x').get('/api/outlook/me')).rejects.toMatchObject({ linkUrl: 'https://et.example.com/outlook/link?t=x' });
    await expect(answer('javascript:alert(1)').get('/api/outlook/me')).rejects.toMatchObject({ reason: 'not-linked', linkUrl: null });
  });
});
