/** What the read pane found in the item's body when its header was missing: the pixel's token, and the subject that (with the sender) tells the user's own mail from an answer quoting it. */
export interface BodyPixel {
  token: string;
  subject: string;
}

/**
 * The query of GET /api/outlook/item: whatever the pane could learn of the message, empty parts left out. The sender
 * goes with the header's token too: anyone who got the mail can write its token into a mail of theirs, so the server
 * keeps the item's ids for the token only on the user's own mail.
 */
export function itemQuery(token: string | null, internetMessageId: string | null | undefined, conversationId: string | null | undefined,
  from: string | null | undefined, body?: BodyPixel | null): string {
  const q = new URLSearchParams();
  if (token) q.set('token', token);
  if (internetMessageId) q.set('internetMessageId', internetMessageId);
  if (conversationId) q.set('conversationId', conversationId);
  if (from && (token || body?.token)) q.set('from', from);
  if (body?.token && from) {
    q.set('bodyToken', body.token);
    q.set('subject', body.subject);
  }
  return q.toString();
}
