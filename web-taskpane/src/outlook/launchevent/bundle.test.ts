import { resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build, type Rolldown } from 'vite';
import { describe, expect, it } from 'vitest';
import '../../../../tests/EmailTracking.Tests/Browser/Outlook/office-double.js';

/** What the server replaces with its origin when it serves launchevent.js (Outlook/LaunchEventScript.cs). */
const OriginPlaceholder = '__ET_SERVER_ORIGIN__';

/**
 * Classic Outlook on Windows runs launchevent.js alone in a JavaScript-only runtime: no page, no window, no document,
 * no modules. The built file must be one classic script that, in a bare global scope holding only `Office`,
 * associates the handler at load (without it, SoftBlock keeps users from sending).
 */
describe('launchevent.js as built', () => {
  it('is a classic script that associates onMessageSendHandler in a runtime with nothing but Office', async () => {
    const result = await build({
      configFile: resolve(import.meta.dirname, '../../../vite.config.ts'),
      mode: 'outlook-launchevent',
      logLevel: 'silent',
      build: { write: false },
    });
    const outputs = (Array.isArray(result) ? result : [result]) as Rolldown.RolldownOutput[];
    const chunks = outputs.flatMap((o) => o.output).filter((o): o is Rolldown.OutputChunk => o.type === 'chunk');
    expect(chunks.map((c) => c.fileName)).toEqual(['launchevent.js']);
    const code = chunks[0]!.code;
    expect(code).not.toMatch(/^\s*(import|export)\s/m);
    expect(code).not.toMatch(/\bimport\(/);

    const associated: string[] = [];
    const sandbox = { Office: { actions: { associate: (name: string) => { associated.push(name); } } } };
    runInNewContext(code, sandbox);
    expect(associated).toEqual(['onMessageSendHandler']);

    // There is no document or location to learn the server's origin from: the server writes it into the file as it
    // serves it, and the handler's requests go there.
    expect(code).toContain(OriginPlaceholder);
    const served = code.replace(OriginPlaceholder, 'https://t.example.com');
    const double = globalThis.OfficeDouble.create({
      mode: 'compose', userEmail: 'flynn@encom.test', accessToken: 'token-1', requirementSets: { Mailbox: '1.13', IdentityAPI: '1.3' },
      item: { subject: 'Hi', to: [{ displayName: 'Alan', emailAddress: 'alan@encom.test' }], body: '<p>Hi</p>', sessionData: { 'emailtracking.track': 'on' } },
    });
    const requested: string[] = [];
    const fetch = (input: string) => {
      requested.push(String(input));
      return Promise.resolve(new Response('{"title":"Down"}', { status: 503 }));
    };
    runInNewContext(served, { Office: double.Office, fetch, setTimeout, clearTimeout, AbortController, URL, Response });
    expect(await double.send()).toEqual({ allowEvent: true });
    expect(requested).toEqual(['https://t.example.com/api/messages']);
  }, 30_000);
});
