/** What the read pane found in the item's body when its header was missing: the pixel's token, and the sender and subject that tell the user's own mail from an answer quoting it. */
export interface BodyPixel {
  token: string;
  from: string;
  subject: string;
}

/** The query of GET /api/outlook/item: whatever the pane could learn of the message, empty parts left out. */
export function itemQuery(token: string | null, internetMessageId: string | null | undefined, conversationId: string | null | undefined,
  body?: BodyPixel | null): string {
  const q = new URLSearchParams();
  if (token) q.set('token', token);
  if (internetMessageId) q.set('internetMessageId', internetMessageId);
  if (conversationId) q.set('conversationId', conversationId);
  if (body?.token && body.from) {
    q.set('bodyToken', body.token);
    q.set('from', body.from);
    q.set('subject', body.subject);
  }
  return q.toString();
}
