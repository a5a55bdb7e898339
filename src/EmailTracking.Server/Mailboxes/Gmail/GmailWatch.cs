using System.Globalization;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>
/// Watches one Gmail mailbox through the Gmail API. The checkpoint is a history id ("gmail:history"): each round
/// reads history.list from it (messages added, and labels added and removed: "Not spam" and "Move to inbox" add INBOX
/// to a message Gmail had before, restoring from the trash takes TRASH away), fetches each new message (raw, or its
/// headers alone when it is larger than MaxMessageBytes), hands mail received to the inbound pipeline and mail in SENT
/// to the sent-mail scanner, and advances the checkpoint after each (past label changes that handled no message, once a
/// page). Gmail has labels, not folders: mail received is whatever is not the user's own, a draft, a chat, spam or
/// in the trash, in the inbox or archived (by the user before the watch read it, or by a filter). A history id
/// Gmail no longer knows (404) means a full resync by search over the look-back, which the idempotent pipeline makes
/// safe. users.watch makes Gmail publish changes to Pub/Sub; the push endpoint pokes this watch, and polling covers
/// pushes that are late or lost.
/// </summary>
public sealed class GmailWatch(
    AppDbContext db, MailboxSecrets secrets, GmailAuth auth, InboundPipeline pipeline, SentMailScanner sent, MailboxSignals signals,
    IOptions<MailboxOptions> mailboxOptions, IOptions<GmailOptions> gmailOptions, TimeProvider clock, ILogger<GmailWatch> log) : IMailboxWatch
{
    public const string HistoryCursor = "gmail:history";

    Guid connectionId;
    DateTimeOffset watchRenewAt = DateTimeOffset.MinValue;

    /// <summary>Until when Gmail pushes for the last users.watch that went through (its expiration).</summary>
    DateTimeOffset watchExpiresAt = DateTimeOffset.MinValue;

    /// <summary>Why Gmail does not push for this mailbox (users.watch was refused and no earlier watch is live), shown on it.</summary>
    string? pushProblem;

    public async Task RunAsync(Guid connectionId, CancellationToken ct)
    {
        this.connectionId = connectionId;
        var o = gmailOptions.Value;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            var connection = await db.Mailboxes.AsNoTracking().FirstOrDefaultAsync(m => m.Id == connectionId, ct);
            if (connection is null || connection.Status == MailboxStatus.Disabled) return;
            if (!o.IsConfigured)
            {
                await SetStatusAsync(connection.Status, "Gmail is not configured on this server any more (Mailboxes:Gmail:ClientId and ClientSecret).", ct);
                await Task.Delay(mailboxOptions.Value.MaxBackoff, clock, ct);
                continue;
            }
            var secret = secrets.Unprotect<GmailSecret>(connection.ProtectedSecret);
            if (secret is null)
            {
                await SetStatusAsync(MailboxStatus.NeedsReconnect, "The stored Gmail access can no longer be read (the server's keys changed). Connect Gmail again.", ct);
                return;
            }
            try
            {
                using var client = auth.CreateClient(connectionId, secret);
                await RenewWatchAsync(client, connection, ct);
                await SyncAsync(client, connection, ct);
                failures = 0;
                await SetStatusAsync(MailboxStatus.Active, pushProblem, ct, synced: true);
                while (!ct.IsCancellationRequested)
                {
                    await signals.WaitAsync(connectionId, o.PollInterval, clock, ct);
                    await RenewWatchAsync(client, connection, ct);
                    await SyncAsync(client, connection, ct);
                    await SetStatusAsync(MailboxStatus.Active, pushProblem, ct, synced: true);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The context lives as long as the watch: what a failed round left unsaved (a first checkpoint whose
                // insert failed, a note) is dropped, or every later round would trip over it (the same key added again).
                db.ChangeTracker.Clear();
                var problem = GmailCalls.Translate(ex, connection.Address, ct);
                failures++;
                // A refused grant: the cached access token is no use either.
                if (problem is MailboxException { NeedsReconnect: true }) auth.Forget(connectionId);
                // A usage limit that says when it lifts is left alone until then.
                var lifts = GmailCalls.RetryAfter(ex) - clock.GetUtcNow();
                await MailboxHealth.AfterFailureAsync(problem, ex, failures, connection.Status, connection.Address,
                    (status, message) => SetStatusAsync(status, message, ct, failures: failures, secretTried: connection.ProtectedSecret),
                    mailboxOptions.Value.MaxBackoff, clock, log, ct, retryAfter: lifts,
                    reconnected: () => GrantChangedAsync(connection.ProtectedSecret, ct), checkEvery: mailboxOptions.Value.Rescan);
            }
        }
    }


    /// <summary>
    /// users.watch on start, then daily and before Gmail's expiration. A topic Gmail refuses (not found, no publish
    /// right) only costs push: the mailbox is still polled, says so in its status, and the call is tried again in an hour.
    /// </summary>
    async Task RenewWatchAsync(GmailClient client, MailboxConnection connection, CancellationToken ct)
    {
        var o = gmailOptions.Value;
        var now = clock.GetUtcNow();
        if (string.IsNullOrWhiteSpace(o.PubSubTopic) || now < watchRenewAt) return;
        try
        {
            var response = await GmailCalls.RunAsync(c => client.Watch(new WatchRequest { TopicName = o.PubSubTopic }).ExecuteAsync(c), o, clock, ct);
            var renew = now + o.WatchRenewal;
            watchExpiresAt = DateTimeOffset.MinValue;
            if (response.Expiration is { } ms)
            {
                watchExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(ms);
                var beforeExpiry = watchExpiresAt.AddHours(-1);
                if (beforeExpiry < renew) renew = beforeExpiry > now ? beforeExpiry : now + TimeSpan.FromMinutes(5);
            }
            watchRenewAt = renew;
            pushProblem = null;
        }
        catch (Exception ex) when (GmailCalls.Translate(ex, connection.Address, ct) is MailboxException { NeedsReconnect: false } problem)
        {
            log.LogWarning("users.watch for {Address} failed, polling only for now: {Problem}", connection.Address, problem.Message);
            watchRenewAt = now + TimeSpan.FromHours(1);
            // A renewal that failed while the last watch still runs costs nothing yet.
            if (now >= watchExpiresAt) pushProblem = $"Gmail cannot notify this server of new mail (users.watch: {problem.Message}); the mailbox is read every {o.PollInterval.TotalSeconds:0} s instead.";
        }
    }

    async Task SyncAsync(GmailClient client, MailboxConnection connection, CancellationToken ct)
    {
        var o = gmailOptions.Value;
        var cursor = await ReadCursorAsync(ct);
        if (cursor is null)
        {
            // First look at this mailbox: from now on by history, and the look-back by search, so that answers to
            // mail sent before connecting are seen. The baseline comes first: nothing arriving meanwhile is missed.
            var baseline = await BaselineAsync(client, ct);
            await ResyncAsync(client, connection, ct);
            await SaveCursorAsync(baseline, ct);
            cursor = baseline;
        }
        // The pages of one listing all belong to the history id it started from; the checkpoint moves on meanwhile.
        var start = cursor.Value;
        var resynced = false;
        string? pageToken = null;
        while (true)
        {
            ListHistoryResponse page;
            try
            {
                page = await GmailCalls.RunAsync(c =>
                {
                    var list = client.ListHistory(start);
                    list.HistoryTypes = new[] { "messageAdded", "labelAdded", "labelRemoved" };
                    list.MaxResults = o.PageSize;
                    list.PageToken = pageToken;
                    return list.ExecuteAsync(c);
                }, o, clock, ct);
            }
            catch (Exception ex) when (GmailCalls.IsNotFound(ex) && !resynced)
            {
                // Gmail keeps history for about a week, sometimes only hours: read the look-back again instead.
                log.LogWarning("History {HistoryId} of {Address} is gone; resynchronising", start, connection.Address);
                var baseline = await BaselineAsync(client, ct);
                await ResyncAsync(client, connection, ct);
                await SaveCursorAsync(baseline, ct);
                cursor = start = baseline;
                resynced = true;
                pageToken = null;
                continue;
            }
            // How far this page was read. A record that handled no message (a label change alone: reading, starring,
            // labelling, all day in a busy mailbox) is stored with the page rather than with a write of its own; listed
            // again after a restart, it costs nothing.
            var read = cursor.Value;
            foreach (var record in page.History ?? [])
            {
                var handled = false;
                foreach (var added in record.MessagesAdded ?? [])
                {
                    if (added.Message is not { Id: { } id } m) continue;
                    // History names the labels: drafts, spam and chats are not fetched at all.
                    if (m.LabelIds is { } labels && !IsMail(labels)) continue;
                    await HandleAsync(client, connection, id, ct);
                    handled = true;
                }
                // Reading, starring and labelling mail change labels all day; only a message that comes into the inbox
                // (out of spam) or into Sent (a scheduled mail leaving), or out of the trash (restored: messages.untrash
                // takes TRASH away and adds nothing) or out of spam without the inbox, can be one passed over or not read
                // yet. Handling a message again is harmless: the pipeline and the scanner know what they recorded.
                foreach (var id in Moved(record.LabelsAdded, "INBOX", "SENT").Concat(Moved(record.LabelsRemoved, "TRASH", "SPAM")))
                {
                    await HandleAsync(client, connection, id, ct);
                    handled = true;
                }
                if (record.Id is not { } rid || rid <= read) continue;
                read = rid;
                // A message handled is stored past at once: a restart neither misses the next nor hands this one over again.
                if (handled)
                {
                    await SaveCursorAsync(rid, ct);
                    cursor = rid;
                }
            }
            var caughtUp = string.IsNullOrEmpty(page.NextPageToken);
            // Once every page was read, the mailbox's current id: past records of kinds not listed too.
            if (caughtUp && page.HistoryId is { } current && current > read) read = current;
            if (read > cursor.Value)
            {
                await SaveCursorAsync(read, ct);
                cursor = read;
            }
            if (caughtUp) return;
            pageToken = page.NextPageToken;
        }
    }

    async Task<ulong> BaselineAsync(GmailClient client, CancellationToken ct)
    {
        var profile = await GmailCalls.RunAsync(c => client.GetProfile().ExecuteAsync(c), gmailOptions.Value, clock, ct);
        return profile.HistoryId ?? throw new MailboxException("Gmail's profile carried no history id.", needsReconnect: false);
    }

    /// <summary>Everything of the look-back, oldest first, found by search (inbox and sent alike).</summary>
    async Task ResyncAsync(GmailClient client, MailboxConnection connection, CancellationToken ct)
    {
        var o = gmailOptions.Value;
        var ids = new List<string>();
        string? pageToken = null;
        do
        {
            var page = await GmailCalls.RunAsync(c =>
            {
                var list = client.ListMessages();
                list.Q = string.Create(CultureInfo.InvariantCulture, $"newer_than:{Math.Max(1, mailboxOptions.Value.LookbackDays)}d");
                list.MaxResults = o.PageSize;
                list.PageToken = pageToken;
                return list.ExecuteAsync(c);
            }, o, clock, ct);
            ids.AddRange((page.Messages ?? []).Select(m => m.Id).OfType<string>());
            pageToken = page.NextPageToken;
        } while (!string.IsNullOrEmpty(pageToken) && ids.Count < 50_000);
        ids.Reverse();
        foreach (var id in ids.Distinct()) await HandleAsync(client, connection, id, ct);
    }

    async Task HandleAsync(GmailClient client, MailboxConnection connection, string id, CancellationToken ct)
    {
        var o = gmailOptions.Value;
        GmailMessage message;
        MimeMessage mime;
        GmailMessage? summary = null;
        try
        {
            // Labels and size first (a few hundred bytes): only mail is read (not drafts, chats, spam, trash), and a message larger
            // than the limit is matched and classified from its headers alone, as over IMAP.
            summary = await GmailCalls.RunAsync(c => client.GetMessage(id, GmailClient.MessageFormat.Minimal).ExecuteAsync(c), o, clock, ct);
            if (!IsMail(summary.LabelIds ?? [])) return;
            if (summary.SizeEstimate is { } size && size > mailboxOptions.Value.MaxMessageBytes)
            {
                message = await GmailCalls.RunAsync(c => client.GetMessage(id, GmailClient.MessageFormat.Metadata).ExecuteAsync(c), o, clock, ct);
                mime = new MimeMessage();
                mime.Headers.Clear();
                foreach (var h in message.Payload?.Headers ?? [])
                {
                    if (string.IsNullOrEmpty(h.Name)) continue;
                    try
                    {
                        mime.Headers.Add(AsWritten(h.Name, h.Value));
                    }
                    catch (ArgumentException)
                    {
                        // Gmail names a header by whatever stood before its colon; a name MimeKit refuses (a space, a
                        // non-ASCII letter) is nothing we match on, and must not stop the mailbox at this message.
                        log.LogDebug("Gmail message {Id} of {Address}: header {Name} left out", id, connection.Address, h.Name);
                    }
                }
            }
            else
            {
                message = await GmailCalls.RunAsync(c => client.GetMessage(id, GmailClient.MessageFormat.Raw).ExecuteAsync(c), o, clock, ct);
                if (message.Raw is null) return;
                mime = MimeMessage.Load(new MemoryStream(Base64Url.Decode(message.Raw)));
            }
        }
        catch (Exception ex) when (GmailCalls.IsNotFound(ex))
        {
            return; // deleted since it was added
        }
        catch (FormatException ex)
        {
            // MimeKit's ParseException is a FormatException, as is bad base64: nothing to match in it. Noted for the user.
            log.LogWarning("Gmail message {Id} of {Address} could not be parsed ({Problem}); noted and passed", id, connection.Address, ex.Message);
            await UnreadableMail.NoteAsync(db, connection, "gmail:" + id, summary is null ? null : Folder(summary),
                UnreadableMail.NotMime(ex), summary?.SizeEstimate,
                summary?.InternalDate is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null, clock.GetUtcNow(), save: true, ct);
            return;
        }
        // Disposed when handled: a MimeKit message left to its finalizer survives a collection with all its parts.
        using (mime)
        {
            DateTimeOffset? received = message.InternalDate is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
            try
            {
                if (message.HasLabel("SENT")) await sent.HandleAsync(connection, mime, message.ThreadId, ct);
                if (IsReceived(message)) await pipeline.HandleAsync(connection, "gmail:" + id, mime, message.ThreadId, received, ct);
            }
            catch (Exception ex) when (UnreadableMail.IsPoison(ex, ct))
            {
                // One message the code cannot handle must not hold the mailbox back: noted, and the history goes on.
                log.LogError(ex, "Gmail message {Id} of {Address} could not be handled; noted and passed", id, connection.Address);
                UnreadableMail.ForgetUnsaved(db);
                await UnreadableMail.NoteAsync(db, connection, "gmail:" + id, Folder(message), UnreadableMail.NotHandled(ex),
                    message.SizeEstimate, received, clock.GetUtcNow(), save: true, ct);
            }
        }
    }

    /// <summary>The messages of these label changes that gained or lost one of <paramref name="labels"/>.</summary>
    static IEnumerable<string> Moved(IList<GmailHistoryLabels>? changes, params string[] labels) =>
        (changes ?? []).Where(c => c.LabelIds is { } changed && changed.Any(labels.Contains)).Select(c => c.Message?.Id).OfType<string>();

    /// <summary>Labels of what is not mail to read: unsent (a draft, a mail scheduled for later), a chat, spam, deleted.</summary>
    static readonly string[] NotMail = ["DRAFT", "SCHEDULED", "CHAT", "SPAM", "TRASH"];

    /// <summary>Mail received or sent, in the inbox or not: an archived message has no INBOX label, and may have no label at all.</summary>
    static bool IsMail(IEnumerable<string> labels) => !labels.Any(NotMail.Contains);

    /// <summary>Received: anything but the user's own sent mail, which is received too when they wrote to themselves (INBOX).</summary>
    static bool IsReceived(GmailMessage message) => !message.HasLabel("SENT") || message.HasLabel("INBOX");

    /// <summary>Where the user finds the message in Gmail.</summary>
    static string Folder(GmailMessage message) =>
        message.HasLabel("INBOX") ? "INBOX" : message.HasLabel("SENT") ? "SENT" : "All Mail";

    /// <summary>
    /// A header from Gmail's metadata, taken as the message's own bytes (UTF-8) rather than as text to encode. Gmail's
    /// reference does not say whether <c>payload.headers[].value</c> is decoded: as text, an RFC 2047 encoded-word
    /// Gmail left as it stood would be kept literally (the subject would read <c>=?utf-8?b?…?=</c>), while as the
    /// message's bytes MimeKit decodes encoded-words and reads decoded UTF-8 text alike.
    /// </summary>
    static Header AsWritten(string name, string? value)
    {
        // Refuses a name MimeKit does not accept (ArgumentException), as Headers.Add(name, value) did.
        var header = new Header(name, "");
        header.SetRawValue(Encoding.UTF8.GetBytes(" " + Header.Unfold(value ?? "").Trim() + "\r\n"));
        return header;
    }

    async Task<ulong?> ReadCursorAsync(CancellationToken ct)
    {
        var value = await db.MailboxCursors.AsNoTracking().Where(c => c.ConnectionId == connectionId && c.Name == HistoryCursor)
            .Select(c => c.Value).FirstOrDefaultAsync(ct);
        return ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;
    }

    /// <summary>
    /// Written straight to the row: the pipeline clears the context's tracked entities when it meets a duplicate, so
    /// a tracked cursor could silently stop being saved.
    /// </summary>
    async Task SaveCursorAsync(ulong historyId, CancellationToken ct)
    {
        var value = historyId.ToString(CultureInfo.InvariantCulture);
        var now = clock.GetUtcNow();
        var n = await db.MailboxCursors.Where(c => c.ConnectionId == connectionId && c.Name == HistoryCursor)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Value, value).SetProperty(c => c.UpdatedAt, now), ct);
        if (n > 0) return;
        var cursor = new MailboxCursor { ConnectionId = connectionId, Name = HistoryCursor, Value = value, UpdatedAt = now };
        db.MailboxCursors.Add(cursor);
        await db.SaveChangesAsync(ct);
        db.Entry(cursor).State = EntityState.Detached;
    }

    /// <summary>The stored grant is no longer the one tried (Gmail was connected again, on any instance), or the mailbox is gone.</summary>
    async Task<bool> GrantChangedAsync(string tried, CancellationToken ct) =>
        !await db.Mailboxes.AnyAsync(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled && m.ProtectedSecret == tried, ct);

    /// <param name="secretTried">A failure is only recorded while the grant that failed is still the stored one: the
    /// user may have reconnected meanwhile.</param>
    async Task SetStatusAsync(MailboxStatus status, string? message, CancellationToken ct, bool synced = false, int failures = 0, string? secretTried = null)
    {
        var now = clock.GetUtcNow();
        var q = db.Mailboxes.Where(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled);
        if (secretTried is not null) q = q.Where(m => m.ProtectedSecret == secretTried);
        await MailboxHealth.SetStatusAsync(q, status, message, now, synced, failures, ct);
    }
}
