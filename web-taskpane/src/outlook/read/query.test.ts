import { describe, expect, it } from 'vitest';
import { itemQuery } from './query';

const token = 'AbCdEfGhIjKlMnOpQrStUv_-';

describe('itemQuery', () => {
  it('names what the pane found and leaves out what it did not', () => {
    expect(itemQuery(token, '<a@b>', null, null)).toBe(`token=${token}&internetMessageId=%3Ca%40b%3E`);
    expect(itemQuery(null, undefined, 'AAQk+/=', 'kevin@encom.test')).toBe('conversationId=AAQk%2B%2F%3D');
  });

  it("sends the sender with the header's token: the server keeps the item's ids only on the user's own mail", () => {
    expect(itemQuery(token, '<a@b>', 'AAQk', 'kevin@encom.test')).toBe(`token=${token}&internetMessageId=%3Ca%40b%3E&conversationId=AAQk&from=kevin%40encom.test`);
  });

  it("sends a pixel found in the body with the sender and subject, which decide whether it is the email's own", () => {
    expect(itemQuery(null, '<a@b>', null, 'kevin@encom.test', { token, subject: 'Grid & more' }))
      .toBe(`internetMessageId=%3Ca%40b%3E&from=kevin%40encom.test&bodyToken=${token}&subject=Grid+%26+more`);
    expect(itemQuery(null, '<a@b>', null, '', { token, subject: 'x' })).toBe('internetMessageId=%3Ca%40b%3E');
  });
});
