import { describe, expect, it } from 'vitest';
import { itemQuery } from './query';

const token = 'AbCdEfGhIjKlMnOpQrStUv_-';

describe('itemQuery', () => {
  it('names what the pane found and leaves out what it did not', () => {
    expect(itemQuery(token, '<a@b>', null)).toBe(`token=${token}&internetMessageId=%3Ca%40b%3E`);
    expect(itemQuery(null, undefined, 'AAQk+/=')).toBe('conversationId=AAQk%2B%2F%3D');
  });

  it("sends a pixel found in the body with the sender and subject, which decide whether it is the email's own", () => {
    expect(itemQuery(null, '<a@b>', null, { token, from: 'kevin@encom.test', subject: 'Grid & more' }))
      .toBe(`internetMessageId=%3Ca%40b%3E&bodyToken=${token}&from=kevin%40encom.test&subject=Grid+%26+more`);
    expect(itemQuery(null, '<a@b>', null, { token, from: '', subject: 'x' })).toBe('internetMessageId=%3Ca%40b%3E');
  });
});
