import { describe, expect, it } from 'vitest';
import { changesMessage } from './live';

const mine = '0d5e3c1a-7f7e-4f0e-9d0c-2b8f5c1e9a11';
const other = '5a1f0c9e-2b3d-4e5f-8a7b-6c5d4e3f2a1b';

describe('changesMessage', () => {
  it('refreshes for a new event of the message', () => {
    expect(changesMessage({ id: '7:0', event: 'activity', data: JSON.stringify({ id: 7, messageId: mine, kind: 'open' }) }, mine)).toBe(true);
  });

  it('refreshes when one of its events is taken back', () => {
    const data = JSON.stringify({ change: 3, id: 7, messageId: mine, kind: 'click', from: 'human', verdict: 'scanner' });
    expect(changesMessage({ id: '7:3', event: 'verdict', data }, mine)).toBe(true);
  });

  it('leaves the pane alone for other messages, other event types and unreadable data', () => {
    expect(changesMessage({ id: '8:3', event: 'verdict', data: JSON.stringify({ id: 8, messageId: other }) }, mine)).toBe(false);
    expect(changesMessage({ id: '8:3', event: 'activity', data: JSON.stringify({ id: 8, messageId: other }) }, mine)).toBe(false);
    expect(changesMessage({ id: '', event: 'end', data: JSON.stringify({ reason: 'revoked', messageId: mine }) }, mine)).toBe(false);
    expect(changesMessage({ id: '', event: 'message', data: JSON.stringify({ messageId: mine }) }, mine)).toBe(false);
    expect(changesMessage({ id: '9:3', event: 'activity', data: '{not json' }, mine)).toBe(false);
    expect(changesMessage({ id: '9:3', event: 'activity', data: 'null' }, mine)).toBe(false);
  });
});
