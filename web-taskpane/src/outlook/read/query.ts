/** The query of GET /api/outlook/item: whatever the pane could learn of the message, empty parts left out. */
export function itemQuery(token: string | null, internetMessageId: string | null | undefined, conversationId: string | null | undefined): string {
  const q = new URLSearchParams();
  if (token) q.set('token', token);
  if (internetMessageId) q.set('internetMessageId', internetMessageId);
  if (conversationId) q.set('conversationId', conversationId);
  return q.toString();
}
