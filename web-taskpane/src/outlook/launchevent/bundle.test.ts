import { resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build, type Rolldown } from 'vite';
import { describe, expect, it } from 'vitest';

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
  }, 30_000);
});
