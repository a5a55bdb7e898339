import '../shared/pane.css';
import { Api } from '../shared/api';
import { tokenSource } from '../shared/auth';
import type { ContentItem, DocumentLink, OutlookMe } from '../shared/contract';
import { byId, el, errorText, exact, isolated, linkPrompt, person, setState, showFailure } from '../shared/dom';
import { describeFailure } from '../shared/failure';
import { untilLinked } from '../shared/link';
import { officeCall, recipientDetailsOf } from '../shared/office';
import { readTrackChoice, writeTrackChoice } from '../shared/tracking';

/**
 * The compose pane: the "Track this email" switch (kept in the item's session data for the on-send handler), the
 * recipients as they stand, the plan's limits, and the content library, whose documents go in at the cursor as
 * tracked links.
 */
async function main(): Promise<void> {
  await Office.onReady();
  const office = Office;
  const item = office.context.mailbox.item as Office.MessageCompose;
  const api = new Api({ base: '', token: tokenSource(office, location.origin) });

  let me: OutlookMe;
  const loadMe = () => api.get<OutlookMe>('/api/outlook/me');
  const untracked = 'Mail you send now goes untracked.';
  try {
    me = await loadMe();
  } catch (e) {
    const failure = describeFailure(e, errorText);
    if (!failure.linkUrl) {
      showFailure(failure, untracked);
      return;
    }
    // The person can link this Microsoft account themselves: the pane goes on once they have.
    me = await untilLinked(office, failure, loadMe, linkPrompt(untracked), (x) => describeFailure(x, errorText));
  }

  const track = byId<HTMLInputElement>('track');
  const choice = await readTrackChoice(office, item);
  track.checked = choice ?? me.trackByDefault;
  byId('track-hint').textContent = choice === null
    ? `Your default: ${me.trackByDefault ? 'on' : 'off'}. Opens, clicks and replies are recorded when it is on.`
    : 'Opens, clicks and replies are recorded when it is on.';
  track.addEventListener('change', () => {
    const on = track.checked;
    writeTrackChoice(office, item, on).then(
      () => { byId('track-hint').textContent = on ? 'This email will be tracked when you send it.' : 'This email will go untracked.'; },
      (e: unknown) => setState('error', `Could not keep your choice: ${errorText(e)}`),
    );
  });
  byId('tracking').hidden = false;

  await showRecipients(office, item, me);
  if (item.addHandlerAsync) {
    item.addHandlerAsync(office.EventType.RecipientsChanged, () => { void showRecipients(office, item, me); });
  }

  byId('plan').replaceChildren(`${me.plan === 'team' ? 'Team' : 'Solo'} plan, sending as `, exact(me.email), me.plan === 'team'
    ? `: up to ${me.maxRecipients} recipients, tracked documents included.`
    : `: up to ${me.maxRecipients} recipients; opens, clicks and replies are tracked.`);
  byId('plan-section').hidden = false;

  await showLibrary(office, item, api, me);
  setState('ready');
}

async function showRecipients(office: typeof Office, item: Office.MessageCompose, me: OutlookMe): Promise<void> {
  const list = byId('recipients');
  try {
    const r = await recipientDetailsOf(office, item);
    const all = [...r.to.map((d) => ['To', d] as const), ...r.cc.map((d) => ['Cc', d] as const), ...r.bcc.map((d) => ['Bcc', d] as const)];
    list.replaceChildren(...all.map(([role, d]) => {
      const li = el('li');
      // The name and the address kept apart, so that neither can disguise the other (bidi.ts).
      const who = el('span', undefined, 'who');
      who.append(...person(d));
      li.append(who, el('span', role, 'hint'));
      return li;
    }));
    if (all.length === 0) list.append(el('li', 'No recipients yet.', 'hint'));
    byId('recipient-limit').textContent = all.length > me.maxRecipients
      ? `More than ${me.maxRecipients} recipients: the server will refuse to track this email, and it will go untracked.`
      : '';
  } catch (e) {
    list.replaceChildren(el('li', `Could not read the recipients: ${errorText(e)}`, 'hint'));
  }
  byId('recipients-section').hidden = false;
}

async function showLibrary(office: typeof Office, item: Office.MessageCompose, api: Api, me: OutlookMe): Promise<void> {
  byId('library-section').hidden = false;
  const note = byId('library-note');
  const list = byId('library');
  if (!me.contentAllowed) {
    // The server refuses tracked document links on the Solo plan (403), so the pane does not offer what would fail.
    note.textContent = 'Tracked documents (page-by-page reading, downloads) come with the Team plan; your team is on the Solo plan. ' +
      'Attach files the usual way, or ask your administrator to move the team to the Team plan.';
    return;
  }
  let items: ContentItem[];
  try {
    items = (await api.get<ContentItem[]>('/api/content')).filter((c) => !c.removed);
  } catch (e) {
    note.textContent = `Could not load your library: ${errorText(e)}`;
    return;
  }
  note.textContent = items.length === 0
    ? 'Your library is empty: upload documents in the EmailTracking web app.'
    : 'Insert puts a tracked link to the document at the cursor.';
  list.replaceChildren(...items.map((c) => {
    const li = el('li');
    li.dataset['contentId'] = c.id;
    const button = el('button', 'Insert');
    button.type = 'button';
    button.addEventListener('click', () => {
      button.disabled = true;
      insert(office, item, api, c)
        .then(() => { note.replaceChildren('Inserted a tracked link to ', isolated(c.name), '.'); })
        .catch((e: unknown) => { note.replaceChildren('Could not insert ', isolated(c.name), `: ${errorText(e)}`); })
        .finally(() => { button.disabled = false; });
    });
    const name = el('span', undefined, 'name');
    name.append(isolated(c.name), ` (${c.pages} ${c.pages === 1 ? 'page' : 'pages'})`);
    li.append(name, button);
    return li;
  }));
}

/** A new share link for the document, inserted at the cursor: as HTML in an HTML body, as its URL in a text one. */
async function insert(office: typeof Office, item: Office.MessageCompose, api: Api, c: ContentItem): Promise<void> {
  const link = await api.post<DocumentLink>(`/api/content/${encodeURIComponent(c.id)}/links`, {});
  const type = await officeCall<Office.CoercionType>(office, 'body.getTypeAsync', (cb) => item.body.getTypeAsync(cb));
  const html = type === office.CoercionType.Html;
  await officeCall<void>(office, 'body.setSelectedDataAsync', (cb) =>
    item.body.setSelectedDataAsync(html ? link.html : link.url, { coercionType: html ? office.CoercionType.Html : office.CoercionType.Text }, cb));
}

main().catch((e: unknown) => setState('error', `EmailTracking could not start: ${errorText(e)}`));
