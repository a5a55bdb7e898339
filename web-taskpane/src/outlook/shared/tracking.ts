import { officeCall } from './office';

/**
 * The compose pane's "Track this email" choice, kept in the item's session data (Mailbox 1.11): it lives exactly as
 * long as the compose item, is shared by the task pane and the on-send handler of the same add-in, and is never
 * saved into the message, so nothing of ours travels to recipients or stays in Sent Items. (Custom properties
 * would be saved with the item.) OnMessageSend needs Mailbox 1.12, so every client that runs the handler has it.
 */
export const TrackKey = 'emailtracking.track';

/** 'on' or 'off' as the user chose; null when they have not (the user's default then applies). */
export async function readTrackChoice(office: typeof Office, item: Office.MessageCompose): Promise<boolean | null> {
  try {
    const v = await officeCall<string>(office, 'sessionData.getAsync', (cb) => item.sessionData.getAsync(TrackKey, cb));
    return v === 'on' ? true : v === 'off' ? false : null;
  } catch {
    return null; // a key never set is reported as a failure by some clients: it means "no choice"
  }
}

export function writeTrackChoice(office: typeof Office, item: Office.MessageCompose, on: boolean): Promise<void> {
  return officeCall<void>(office, 'sessionData.setAsync', (cb) => item.sessionData.setAsync(TrackKey, on ? 'on' : 'off', cb));
}
