import { describe, expect, it } from 'vitest';
import { FeedRefused, followSse, SseParser } from './sse';

describe('SseParser', () => {
  it('parses events with id, event type and multi-line data, and skips comments', () => {
    const p = new SseParser();
    const events = p.push('retry: 2000\n\n: keep-alive\n\nid: 7\nevent: activity\ndata: {"a":1,\ndata: "b":2}\n\n');
    expect(events).toEqual([{ id: '7', event: 'activity', data: '{"a":1,\n"b":2}' }]);
    expect(p.retry).toBe(2000);
    expect(p.lastEventId).toBe('7');
  });

  it('joins events split anywhere across chunks, including between CR and LF', () => {
    const text = 'id: 1\r\nevent: activity\r\ndata: one\r\n\r\nid: 2\r\ndata: two\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      const events = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
      expect(events, `cut at ${cut}`).toEqual([
        { id: '1', event: 'activity', data: 'one' },
        { id: '2', event: 'message', data: 'two' },
      ]);
    }
  });

  it('accepts CR-only line ends, fields without a value and without the space', () => {
    const p = new SseParser();
    expect(p.push('data:x\rdata\r\r')).toEqual([{ id: '', event: 'message', data: 'x\n' }]);
  });

  it('keeps the last event id across events, and an event without data is not dispatched', () => {
    const p = new SseParser();
    expect(p.push('id: 5\nevent: activity\n\ndata: later\n\n')).toEqual([{ id: '5', event: 'message', data: 'later' }]);
  });

  it('drops a half-received event on reset, keeping the last id', () => {
    const p = new SseParser();
    p.push('id: 3\ndata: whole\n\nid: 4\ndata: half');
    p.reset();
    expect(p.lastEventId).toBe('4');
    expect(p.push('\n\n')).toEqual([]);
  });

  it('ignores a retry that is not a number', () => {
    const p = new SseParser();
    p.push('retry: soon\n\n');
    expect(p.retry).toBeNull();
  });
});

/** A response whose body streams the given chunks, then ends. */
function streamed(chunks: string[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(new TextEncoder().encode(chunk));
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

describe('followSse', () => {
  it('reconnects after the stream ends, with Last-Event-ID and fresh headers, and stops when aborted', async () => {
    const requests: Record<string, string>[] = [];
    const controller = new AbortController();
    const answers = [
      () => streamed(['retry: 10\n\nid: 1\nevent: activity\ndata: a\n\n', 'id: 2\nevent: activity\ndata: b\n\nid: 3\ndata: cut']),
      () => new Response('down', { status: 503 }),
      () => streamed(['id: 3\nevent: activity\ndata: c\n\n']),
    ];
    const seen: string[] = [];
    const waits: number[] = [];
    let n = 0;
    await followSse({
      url: '/api/feed',
      headers: async () => ({ Authorization: `Bearer t${++n}` }),
      signal: controller.signal,
      fetch: async (_url, init) => {
        requests.push({ ...(init?.headers as Record<string, string>) });
        const next = answers.shift();
        if (!next) {
          controller.abort();
          throw new DOMException('aborted', 'AbortError');
        }
        return next();
      },
      sleep: async (ms) => { waits.push(ms); },
      onEvent: (e) => seen.push(`${e.id}:${e.data}`),
    });
    expect(seen).toEqual(['1:a', '2:b', '3:c']);
    expect(requests.map((h) => [h['Authorization'], h['Last-Event-ID']])).toEqual([
      ['Bearer t1', undefined],
      ['Bearer t2', '3'], // the half-received event 3 was dropped, but its id line had been read: as EventSource does
      ['Bearer t3', '3'],
      ['Bearer t4', '3'],
    ]);
    expect(waits).toEqual([10, 10, 10]); // the server's retry; one failure in a row waits the base time
  });

  it('stops on a client error that asking again will not fix', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    await followSse({
      url: '/api/feed',
      headers: async () => ({}),
      signal: new AbortController().signal,
      fetch: async () => { calls++; return new Response('', { status: 403 }); },
      sleep: async () => {},
      onEvent: () => {},
      onError: (e) => errors.push(e),
    });
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it('tells onStop, not onError, that it stopped, in the words of the refusal', async () => {
    const errors: unknown[] = [];
    const stops: FeedRefused[] = [];
    let calls = 0;
    const problem = JSON.stringify({ title: 'The account is locked.', detail: 'An administrator locked this account.', status: 403 });
    for (const answer of [() => new Response(problem, { status: 403 }), () => new Response('<html>nope</html>', { status: 400 })]) {
      await followSse({
        url: '/api/feed',
        headers: async () => ({}),
        signal: new AbortController().signal,
        fetch: async () => { calls++; return answer(); },
        sleep: async () => {},
        onEvent: () => {},
        onError: (e) => errors.push(e),
        onStop: (e) => stops.push(e),
      });
    }
    expect(calls).toBe(2);
    expect(errors).toEqual([]);
    expect(stops.map((e) => [e.status, e.message])).toEqual([
      [403, 'The account is locked. An administrator locked this account.'],
      [400, 'The feed was refused (HTTP 400).'],
    ]);
  });
});
