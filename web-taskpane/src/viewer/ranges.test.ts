import { describe, expect, it } from 'vitest';
import { RangeFetchError, RangeSource, openRanges, totalLength, type RangeFetch } from './ranges';

const FILE = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);

/** A server for FILE that answers Range requests (206), logging each; `fail` names answers to give instead. */
function server(fail: Record<number, number> = {}) {
  const log: [number, number][] = [];
  let call = 0;
  const fetchRange: RangeFetch = async (begin, end) => {
    call++;
    log.push([begin, end]);
    const status = fail[call];
    if (status === 0) throw new TypeError('network');
    if (status) return new Response(null, { status });
    const slice = FILE.slice(begin, Math.min(end, FILE.length));
    return new Response(slice, { status: 206, headers: { 'Content-Range': `bytes ${begin}-${begin + slice.length - 1}/${FILE.length}` } });
  };
  return { fetchRange, log };
}

describe('ranges', () => {
  it('reads the length from Content-Range', () => {
    expect(totalLength('bytes 0-65535/4752686')).toBe(4752686);
    expect(totalLength('bytes */100')).toBeNull();
    expect(totalLength(null)).toBeNull();
  });

  it('asks for the tail as soon as the first answer names the length, and serves later requests from it', async () => {
    const s = server();
    const opening = await openRanges(s.fetchRange, 100, 2);
    expect(opening.kind).toBe('ranges');
    if (opening.kind !== 'ranges') return;
    expect(opening.length).toBe(1000);
    expect([...opening.initial]).toEqual([...FILE.slice(0, 100)]);
    expect(s.log).toEqual([[0, 100], [800, 1000]]);

    expect([...(await opening.source.get(900, 1000))]).toEqual([...FILE.slice(900, 1000)]);
    expect([...(await opening.source.get(800, 900))]).toEqual([...FILE.slice(800, 900)]);
    expect(s.log).toHaveLength(2); // both from the prefetched tail
    expect([...(await opening.source.get(300, 400))]).toEqual([...FILE.slice(300, 400)]);
    expect(s.log).toHaveLength(3);
  });

  it('takes the whole file when the server ignores Range', async () => {
    const opening = await openRanges(async () => new Response(FILE, { status: 200 }), 100);
    expect(opening.kind).toBe('whole');
  });

  it('says which status refused the document (404 unknown link, 410 removed)', async () => {
    await expect(openRanges(async () => new Response(null, { status: 410 }), 100)).rejects.toEqual(new RangeFetchError(410));
  });

  it("reads a 410's reason from its problem: a link turned off or expired is not a removed document", async () => {
    const gone = (reason: string) => async () =>
      new Response(JSON.stringify({ status: 410, title: 'This link has been turned off', reason }), {
        status: 410,
        headers: { 'Content-Type': 'application/problem+json' },
      });
    await expect(openRanges(gone('turned-off'), 100)).rejects.toMatchObject({ status: 410, reason: 'turned-off' });
    await expect(new RangeSource(gone('expired'), 1000, 1).get(0, 10)).rejects.toMatchObject({ status: 410, reason: 'expired' });
    // A body that is not a problem says nothing about why.
    const html = async () => new Response('<p>Gone</p>', { status: 410 });
    const error = await new RangeSource(html, 1000, 1).get(0, 10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeFetchError);
    expect((error as RangeFetchError).reason).toBeUndefined();
  });

  it('retries a failed range twice, then gives up; a 4xx is not retried', async () => {
    const flaky = server({ 1: 0, 2: 503 });
    const source = new RangeSource(flaky.fetchRange, 1000, 1);
    expect([...(await source.get(0, 10))]).toEqual([...FILE.slice(0, 10)]);
    expect(flaky.log).toHaveLength(3);

    const down = server({ 1: 0, 2: 0, 3: 0 });
    await expect(new RangeSource(down.fetchRange, 1000, 1).get(0, 10)).rejects.toBeInstanceOf(RangeFetchError);
    expect(down.log).toHaveLength(3);

    const gone = server({ 1: 404 });
    await expect(new RangeSource(gone.fetchRange, 1000, 1).get(0, 10)).rejects.toEqual(new RangeFetchError(404));
    expect(gone.log).toHaveLength(1);
  });

  it('fetches again when the prefetch failed', async () => {
    const s = server({ 2: 0 }); // the tail prefetch fails once
    const opening = await openRanges(s.fetchRange, 100, 2);
    if (opening.kind !== 'ranges') throw new Error('expected ranges');
    await new Promise((r) => setTimeout(r, 1200)); // its retries: it succeeds on the second attempt
    expect([...(await opening.source.get(900, 1000))]).toEqual([...FILE.slice(900, 1000)]);
  });
});
