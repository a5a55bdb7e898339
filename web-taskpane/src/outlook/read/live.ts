import type { FeedActivity } from '../shared/contract';
import type { SseEvent } from '../shared/sse';

/**
 * Whether a live-feed event changes what the read pane shows for this tracked message: a new event of it
 * (`activity`), or one of its events that the feed showed as a person's and now takes back (`verdict`: a scanner's
 * burst of clicks, an image proxy's repeat fetch, the sender's own view). Anything else, or data that cannot be read,
 * leaves the pane alone.
 */
export function changesMessage(event: SseEvent, messageId: string): boolean {
  if (event.event !== 'activity' && event.event !== 'verdict') return false;
  try {
    const data: unknown = JSON.parse(event.data);
    return typeof data === 'object' && data !== null && (data as Partial<Pick<FeedActivity, 'messageId'>>).messageId === messageId;
  } catch {
    return false;
  }
}
