using System.Globalization;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using EmailTracking.Server.Replies.Classification;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Search;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Watches one IMAP mailbox: reads what arrived since the stored checkpoint (UIDVALIDITY and last UID per folder),
/// hands each message to the inbound pipeline, and advances the checkpoint after each handled message; then waits
/// with IDLE (or polls, when the server cannot IDLE) and goes again. The Sent folder is read too, to learn the real
/// Message-ID of tracked mail sent from the user's own mail client.
/// </summary>
public sealed class ImapWatch(
    AppDbContext db, MailboxSecrets secrets, InboundPipeline pipeline, SentMailScanner sent,
    IOptions<MailboxOptions> options, TimeProvider clock, ILogger<ImapWatch> log) : IMailboxWatch
{
    public const string InboxCursor = "imap:INBOX";
    public const string SentCursor = "imap:Sent";

    Guid connectionId;

    /// <summary>
    /// Set whenever the server reports a new message count for INBOX — also while a sync runs, when no IDLE is
    /// listening: mail that lands during a sync is then read at once instead of at the next IDLE restart.
    /// </summary>
    volatile bool arrived;
    CancellationTokenSource? idleDone;

    /// <summary>The tail of what the server sent on the current connection: the response code of a refused FETCH.</summary>
    ImapResponseTail? responses;

    /// <summary>
    /// When each message the server refuses to send for now (by provider id: folder, UIDVALIDITY and UID) was first
    /// refused. In memory, for as long as this watch runs (across its rounds and reconnects); a new watch of the
    /// mailbox (a restart, another instance) gives such a message the whole grace again.
    /// </summary>
    readonly Dictionary<string, DateTimeOffset> refusedSince = [];

    public async Task RunAsync(Guid connectionId, CancellationToken ct)
    {
        this.connectionId = connectionId;
        var o = options.Value;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            var connection = await db.Mailboxes.AsNoTracking().FirstOrDefaultAsync(m => m.Id == connectionId, ct);
            if (connection is null || connection.Status == MailboxStatus.Disabled) return;
            var secret = secrets.UnprotectImap(connection.ProtectedSecret);
            if (secret is null)
            {
                await SetStatusAsync(MailboxStatus.NeedsReconnect, "The stored credentials can no longer be read (the server's keys changed). Connect the mailbox again.", ct);
                return;
            }
            try
            {
                responses = new ImapResponseTail();
                using var client = await MailConnect.ImapAsync(secret, o, ct, responses);
                client.Inbox.CountChanged += (_, _) =>
                {
                    arrived = true;
                    try
                    {
                        idleDone?.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                        // That IDLE has just ended anyway.
                    }
                };
                await SyncAsync(client, connection, ct);
                failures = 0;
                await SetStatusAsync(MailboxStatus.Active, null, ct, synced: true);
                while (!ct.IsCancellationRequested && client.IsConnected)
                {
                    await WaitForMailAsync(client, ct);
                    await SyncAsync(client, connection, ct);
                    await SetStatusAsync(MailboxStatus.Active, null, ct, synced: true);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // What the failed round left unsaved is dropped, or the next round would trip over it: a folder's first
                // checkpoint (added, never saved: added again, its key taken) or one moved past a message whose save
                // failed (a query hands back the tracked copy, not the stored one).
                db.ChangeTracker.Clear();
                var problem = MailConnect.Translate("IMAP", secret.Imap, ex, ct);
                failures++;
                await MailboxHealth.AfterFailureAsync(problem, ex, failures, connection.Status, connection.Address,
                    (status, message) => SetStatusAsync(status, message, ct, failures: failures, secretTried: connection.ProtectedSecret),
                    o.MaxBackoff, clock, log, ct, reconnected: () => LoginChangedAsync(connection.ProtectedSecret, ct), checkEvery: o.Rescan);
            }
        }
    }


    async Task SyncAsync(ImapClient client, MailboxConnection connection, CancellationToken ct)
    {
        // One database connection for the round's lookups and records, given back while the watch waits.
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await SyncFoldersAsync(client, connection, ct);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    async Task SyncFoldersAsync(ImapClient client, MailboxConnection connection, CancellationToken ct)
    {
        if (await FindSentFolderAsync(client, ct) is { } sentFolder)
        {
            await SyncFolderAsync(sentFolder, SentCursor, connection,
                (message, providerId, received, _) => sent.HandleAsync(connection, message, null, ct), analyze: false, ct);
        }
        arrived = false;
        await SyncFolderAsync(client.Inbox, InboxCursor, connection,
            (message, providerId, received, analysis) => pipeline.HandleAsync(connection, providerId, message, null, received, ct, analysis),
            analyze: true, ct);
    }

    /// <summary>The folder the server marks as Sent (RFC 6154), or one of the usual names.</summary>
    public static async Task<IMailFolder?> FindSentFolderAsync(ImapClient client, CancellationToken ct)
    {
        if (client.Capabilities.HasFlag(ImapCapabilities.SpecialUse))
        {
            try
            {
                var special = client.GetFolder(SpecialFolder.Sent);
                if (special is not null) return special;
            }
            catch (NotSupportedException)
            {
            }
        }
        var personal = client.GetFolder(client.PersonalNamespaces[0]);
        var folders = await personal.GetSubfoldersAsync(false, ct);
        string[] names = ["Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent"];
        foreach (var name in names)
        {
            var f = folders.FirstOrDefault(f => string.Equals(f.FullName, name, StringComparison.OrdinalIgnoreCase) || string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase));
            if (f is not null) return f;
        }
        return null;
    }

    delegate Task<InboundResult> Handler(MimeMessage message, string providerId, DateTimeOffset? received, InboundPipeline.Analysis? analysis);

    /// <summary>Messages read and analysed together: at most this many, and at most this many bytes (bench/replies uses the same batches).</summary>
    public const int BatchCount = 100;
    const long BatchBytes = 16L * 1024 * 1024;

    async Task SyncFolderAsync(IMailFolder folder, string cursorName, MailboxConnection connection, Handler handle, bool analyze, CancellationToken ct)
    {
        var o = options.Value;
        await folder.OpenAsync(FolderAccess.ReadOnly, ct);
        var cursor = await db.MailboxCursors.FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == cursorName, ct);
        var (validity, lastUid) = ParseCursor(cursor?.Value);
        // Everything that arrives from now on gets a UID from here up.
        var nextAtOpen = folder.UidNext?.Id;
        var readBack = cursor is null || validity != folder.UidValidity;
        IList<UniqueId> uids;
        if (readBack)
        {
            // First look at this folder, or the server renumbered it: read back by date. Handling is idempotent, so
            // what was handled before the renumbering is recognised, not counted again.
            var since = cursor is null ? clock.GetUtcNow().AddDays(-o.LookbackDays) : cursor.UpdatedAt.AddDays(-1);
            if (cursor is not null) log.LogWarning("{Folder} of {Address} changed UIDVALIDITY; reading back since {Since:u}", folder.FullName, connection.Address, since);
            uids = await folder.SearchAsync(SearchQuery.DeliveredAfter(since.UtcDateTime.Date), ct);
            lastUid = 0;
        }
        else
        {
            if (folder.UidNext is { } next && next.Id <= lastUid + 1) return;
            uids = await folder.SearchAsync(SearchQuery.Uids(new UniqueIdRange(new UniqueId(folder.UidValidity, lastUid + 1), UniqueId.MaxValue)), ct);
        }
        var todo = uids.Where(u => u.Id > lastUid).OrderBy(u => u.Id).ToList();
        if (cursor is null)
        {
            cursor = new MailboxCursor { ConnectionId = connectionId, Name = cursorName, Value = FormatCursor(folder.UidValidity, 0), UpdatedAt = clock.GetUtcNow() };
            db.MailboxCursors.Add(cursor);
        }
        foreach (var chunk in todo.Chunk(BatchCount))
        {
            var summaries = (await folder.FetchAsync(chunk, MessageSummaryItems.UniqueId | MessageSummaryItems.Size | MessageSummaryItems.InternalDate, ct))
                .OrderBy(s => s.UniqueId.Id).ToList();
            // Read a batch (bounded in bytes too), look all its Message-IDs up at once, then handle each in UID order,
            // moving the checkpoint after each.
            for (var start = 0; start < summaries.Count;)
            {
                var batch = new List<(IMessageSummary Summary, MimeMessage? Message, string? Problem)>();
                MailboxException? later = null;
                try
                {
                    var classified = new List<InboundClassification>();
                    var classifiedAll = analyze;
                    long bytes = 0;
                    while (start < summaries.Count && (batch.Count == 0 || bytes + (summaries[start].Size ?? 0) <= BatchBytes))
                    {
                        var summary = summaries[start++];
                        var before = responses?.Received ?? 0;
                        var (read, problem, forNow) = await ReadAsync(folder, summary.UniqueId, summary.Size, ct);
                        // What the server sent for it, where more than it announced: a server a user named can say each
                        // message is small and send each as large as one command allows, a hundred of them in a batch.
                        bytes += Math.Max(Math.Min(summary.Size ?? 0, options.Value.MaxMessageBytes), (responses?.Received ?? before) - before);
                        if (forNow is not null)
                        {
                            // Refused for now: what was read before it is handled, then the round stops before it.
                            later = forNow;
                            break;
                        }
                        batch.Add((summary, read, problem));
                        if (read is null || !classifiedAll) continue;
                        try
                        {
                            // Now, while the message just parsed is still in the processor's cache.
                            classified.Add(pipeline.Classify(read));
                        }
                        catch (Exception ex) when (UnreadableMail.IsPoison(ex, ct))
                        {
                            log.LogWarning(ex, "A message of {Address} could not be classified in its batch; the batch is handled one by one", connection.Address);
                            classifiedAll = false;
                        }
                    }
                    var parsed = batch.Where(b => b.Message is not null).Select(b => (b.Message!, (string?)null)).ToList();
                    IReadOnlyList<InboundPipeline.Analysis>? analyses = null;
                    if (analyze && classifiedAll && parsed.Count > 0)
                    {
                        try
                        {
                            analyses = await pipeline.AnalyzeManyAsync(connection.UserId, parsed, ct, classified);
                        }
                        catch (Exception ex) when (UnreadableMail.IsPoison(ex, ct))
                        {
                            // Each message is then analysed on its own, so one bad message only costs itself.
                            log.LogWarning(ex, "A batch of {Address} could not be analysed together; one by one instead", connection.Address);
                        }
                    }
                    var index = 0;
                    foreach (var (summary, message, problem) in batch)
                    {
                        var uid = summary.UniqueId;
                        var providerId = ProviderId(folder, uid);
                        if (message is null)
                        {
                            log.LogWarning("{ProviderId} of {Address} could not be read ({Problem}); noted and passed", providerId, connection.Address, problem);
                            // Saved with the checkpoint below: the watch moves past it only once the note is kept.
                            await UnreadableMail.NoteAsync(db, connection, providerId, folder.FullName, problem ?? "not a readable MIME message",
                                summary.Size, summary.InternalDate, clock.GetUtcNow(), save: false, ct);
                        }
                        else
                        {
                            var analysis = analyses?[index];
                            index++;
                            try
                            {
                                await handle(message, providerId, summary.InternalDate, analysis);
                            }
                            catch (Exception ex) when (UnreadableMail.IsPoison(ex, ct))
                            {
                                // One message the code cannot handle must not stop the mailbox: it is noted and passed.
                                // Database failures are not poison: they stop the round, and the checkpoint stays before it.
                                log.LogError(ex, "{ProviderId} of {Address} could not be handled; noted and passed", providerId, connection.Address);
                                UnreadableMail.ForgetUnsaved(db);
                                await UnreadableMail.NoteAsync(db, connection, providerId, folder.FullName, UnreadableMail.NotHandled(ex),
                                    summary.Size, summary.InternalDate, clock.GetUtcNow(), save: false, ct);
                            }
                        }
                        cursor.Value = FormatCursor(folder.UidValidity, uid.Id);
                        cursor.UpdatedAt = clock.GetUtcNow();
                        await db.SaveChangesAsync(ct);
                    }
                    // The checkpoint stays before the message refused for now; the watch's back-off tries it again.
                    if (later is not null) throw later;
                }
                finally
                {
                    // A MimeKit message left to its finalizer survives a collection with all its parts; disposed, it
                    // does not (reading a mailbox through, that was most of the garbage collector's work).
                    foreach (var (_, message, _) in batch) message?.Dispose();
                }
            }
        }
        var done = todo.Count > 0 ? todo[^1].Id : lastUid;
        // After reading back by date, older mail (before the look-back) must not come up later as "new".
        if (readBack && nextAtOpen is { } n && n - 1 > done) done = n - 1;
        if (cursor.Value != FormatCursor(folder.UidValidity, done))
        {
            cursor.Value = FormatCursor(folder.UidValidity, done);
            cursor.UpdatedAt = clock.GetUtcNow();
        }
        await db.SaveChangesAsync(ct);
    }

    static string ProviderId(IMailFolder folder, UniqueId uid) => $"imap:{folder.FullName}:{folder.UidValidity}:{uid.Id}";

    /// <summary>
    /// RFC 5530 response codes of a refusal that may pass: a part of the server is down (UNAVAILABLE), the message is
    /// locked by another process (INUSE), the server failed (SERVERBUG), or a limit of this session or account was
    /// reached (LIMIT). Every other NO, with another code or none, is taken as the server's last word on the message.
    /// </summary>
    static readonly HashSet<string> TemporaryCodes = ["UNAVAILABLE", "INUSE", "SERVERBUG", "LIMIT"];

    /// <summary>
    /// The whole message, or its headers alone when it is larger than the limit; or why it cannot be read; or, when the
    /// server refuses it for now, the problem that stops the round (<c>Later</c>).
    /// </summary>
    async Task<(MimeMessage? Message, string? Problem, MailboxException? Later)> ReadAsync(IMailFolder folder, UniqueId uid, uint? size, CancellationToken ct)
    {
        try
        {
            MimeMessage message;
            if (size is { } s && s > options.Value.MaxMessageBytes)
            {
                var headers = await folder.GetHeadersAsync(uid, ct);
                message = new MimeMessage();
                message.Headers.Clear();
                foreach (var h in headers) message.Headers.Add(h);
            }
            else
            {
                message = await folder.GetMessageAsync(uid, ct);
            }
            if (refusedSince.Count > 0) refusedSince.Remove(ProviderId(folder, uid));
            return (message, null, null);
        }
        catch (FormatException ex)
        {
            // MimeKit's ParseException is a FormatException: the message is malformed beyond repair.
            if (refusedSince.Count > 0) refusedSince.Remove(ProviderId(folder, uid));
            return (null, UnreadableMail.NotMime(ex), null);
        }
        catch (ImapCommandException ex) when (ex.Response == ImapCommandResponse.No)
        {
            // A lost connection or a BAD stops the round: the message is read again next time.
            return Refused(folder, uid, ex);
        }
    }

    /// <summary>
    /// The server answered NO to this one message. Without a code (Exchange: "could not be converted to RFC-822") or
    /// with one that does not say "for now", it will refuse it again each round: noted and passed, or the mailbox would
    /// be stuck on it. Refused for now, it stops the round until <see cref="MailboxOptions.TemporaryRefusalGrace"/> has
    /// passed since its first refusal, and is then noted and passed too.
    /// </summary>
    (MimeMessage? Message, string? Problem, MailboxException? Later) Refused(IMailFolder folder, UniqueId uid, ImapCommandException ex)
    {
        var code = responses?.LastTaggedCode();
        var said = code is null ? ex.ResponseText : $"[{code}] {ex.ResponseText}";
        var providerId = ProviderId(folder, uid);
        if (code is null || !TemporaryCodes.Contains(code))
        {
            refusedSince.Remove(providerId);
            return (null, $"the mail server would not send it: {said}", null);
        }
        var now = clock.GetUtcNow();
        if (!refusedSince.TryGetValue(providerId, out var since)) refusedSince[providerId] = since = now;
        var grace = options.Value.TemporaryRefusalGrace;
        if (now - since >= grace)
        {
            refusedSince.Remove(providerId);
            return (null, $"the mail server would not send it for now, and kept refusing for longer than {Describe(grace)} ({said})", null);
        }
        return (null, null, new MailboxException(
            $"The IMAP server cannot send message UID {uid.Id} of {folder.FullName} for now ({said}); it will be read again.", needsReconnect: false, ex));
    }

    static string Describe(TimeSpan span) =>
        span.TotalHours >= 1 && span.TotalHours == Math.Floor(span.TotalHours) ? Plural(span.TotalHours, "hour")
        : span.TotalMinutes >= 1 && span.TotalMinutes == Math.Floor(span.TotalMinutes) ? Plural(span.TotalMinutes, "minute")
        : Plural(Math.Round(span.TotalSeconds, 3), "second");

    static string Plural(double n, string unit) => n.ToString("0.###", CultureInfo.InvariantCulture) + " " + unit + (n == 1 ? "" : "s");

    async Task WaitForMailAsync(ImapClient client, CancellationToken ct)
    {
        var o = options.Value;
        var inbox = client.Inbox;
        if (!inbox.IsOpen) await inbox.OpenAsync(FolderAccess.ReadOnly, ct);
        if (arrived) return;
        if (!client.Capabilities.HasFlag(ImapCapabilities.Idle))
        {
            await Task.Delay(o.PollInterval, clock, ct);
            await client.NoOpAsync(ct);
            return;
        }
        if (arrived) return;
        using var done = new CancellationTokenSource(o.IdleRestart);
        idleDone = done;
        try
        {
            if (arrived) return;
            await client.IdleAsync(done.Token, ct);
        }
        finally
        {
            idleDone = null;
        }
    }

    /// <summary>The stored login is no longer the one tried (the mailbox was connected again, on any instance), or the mailbox is gone.</summary>
    async Task<bool> LoginChangedAsync(string tried, CancellationToken ct) =>
        !await db.Mailboxes.AnyAsync(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled && m.ProtectedSecret == tried, ct);

    /// <param name="secretTried">A failure is only recorded while the credentials that failed are still the stored
    /// ones: the user may have reconnected meanwhile.</param>
    async Task SetStatusAsync(MailboxStatus status, string? message, CancellationToken ct, bool synced = false, int failures = 0, string? secretTried = null)
    {
        var now = clock.GetUtcNow();
        var q = db.Mailboxes.Where(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled);
        if (secretTried is not null) q = q.Where(m => m.ProtectedSecret == secretTried);
        await MailboxHealth.SetStatusAsync(q, status, message, now, synced, failures, ct);
    }

    static (uint Validity, uint LastUid) ParseCursor(string? value)
    {
        var parts = value?.Split(':');
        if (parts is { Length: 2 } && uint.TryParse(parts[0], CultureInfo.InvariantCulture, out var v) && uint.TryParse(parts[1], CultureInfo.InvariantCulture, out var u))
        {
            return (v, u);
        }
        return (0, 0);
    }

    static string FormatCursor(uint validity, uint lastUid) => string.Create(CultureInfo.InvariantCulture, $"{validity}:{lastUid}");
}
