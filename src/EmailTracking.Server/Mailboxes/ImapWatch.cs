using System.Collections.Concurrent;
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
/// Message-ID of tracked mail sent from the user's own mail client. The other folders where received mail can land (a
/// server-side rule files answers in "Customers") are read as the Inbox is, each with its own checkpoint, every
/// <see cref="MailboxOptions.PollInterval"/>: IDLE watches one folder, and that is the Inbox. Where the server can
/// NOTIFY (RFC 5465), the watch also asks to be told of new mail in those folders while it IDLEs, and reads a folder
/// the server names at once; the poll stays, for servers without NOTIFY and for what a notification misses.
/// </summary>
public sealed class ImapWatch(
    AppDbContext db, MailboxSecrets secrets, InboundPipeline pipeline, SentMailScanner sent,
    IOptions<MailboxOptions> options, TimeProvider clock, ILogger<ImapWatch> log) : IMailboxWatch
{
    public const string InboxCursor = "imap:INBOX";
    public const string SentCursor = "imap:Sent";

    /// <summary>Another folder's checkpoint is this and its full name (a hash of it, when the name is long).</summary>
    public const string FolderCursorPrefix = "imap:folder:";

    /// <summary>When the folders were last listed and all read: a folder that appears later is read back from then.</summary>
    public const string FoldersCursor = "imap:folders";

    /// <summary>When the other folders are read next; they are read at the first round.</summary>
    DateTimeOffset foldersDue = DateTimeOffset.MinValue;

    /// <summary>What kept some folder from being read at their last reading, shown on the mailbox; null when all were read.</summary>
    string? foldersProblem;

    Guid connectionId;

    /// <summary>
    /// Set whenever the server reports a new message count for INBOX — also while a sync runs, when no IDLE is
    /// listening: mail that lands during a sync is then read at once instead of at the next IDLE restart.
    /// </summary>
    volatile bool arrived;
    CancellationTokenSource? idleDone;

    /// <summary>The Inbox's message count as last reported on the current connection; -1 before its first report.</summary>
    int inboxCount = -1;

    /// <summary>The other folders as last listed on the current connection, by checkpoint name; null until they are.</summary>
    Dictionary<string, IMailFolder>? listedFolders;

    /// <summary>The listed folders whose changes (the server's STATUS and EXISTS) are listened to on the current connection.</summary>
    HashSet<IMailFolder> listening = new(ReferenceEqualityComparer.Instance);

    /// <summary>
    /// Folders (by checkpoint name) the server said have changed since they were last opened: read at the next round,
    /// without waiting for the poll. Kept across reconnects: what was announced is still to be read.
    /// </summary>
    readonly ConcurrentDictionary<string, byte> notified = new();

    /// <summary>The folders (full names) the NOTIFY in force on the current connection covers; null while none is.</summary>
    string? notifyFor;

    /// <summary>The server refused NOTIFY on the current connection: it is not asked again until the next one.</summary>
    bool notifyRefused;

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
                // A new connection has its own folder objects and no NOTIFY in force.
                listedFolders = null;
                listening = new HashSet<IMailFolder>(ReferenceEqualityComparer.Instance);
                notifyFor = null;
                notifyRefused = false;
                inboxCount = -1;
                client.Inbox.CountChanged += (_, _) =>
                {
                    // MailKit raises this at every SELECT of the Inbox, changed or not, and each round selects it again
                    // after Sent: taken as news, the watch went round and round and never reached IDLE. Only a count
                    // that moved is news.
                    var count = client.Inbox.Count;
                    if (count == inboxCount) return;
                    inboxCount = count;
                    arrived = true;
                    WakeUp();
                };
                await SyncAsync(client, connection, ct);
                failures = 0;
                await SetStatusAsync(MailboxStatus.Active, foldersProblem, ct, synced: true);
                while (!ct.IsCancellationRequested && client.IsConnected)
                {
                    await WaitForMailAsync(client, ct);
                    await SyncAsync(client, connection, ct);
                    await SetStatusAsync(MailboxStatus.Active, foldersProblem, ct, synced: true);
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
        var sentFolder = await FindSentFolderAsync(client, ct);
        if (sentFolder is not null)
        {
            await SyncFolderAsync(sentFolder, SentCursor, connection,
                (message, providerId, received, _) => sent.HandleAsync(connection, message, null, ct), analyze: false, ct);
        }
        // A new connection that can NOTIFY lists the folders at once, to ask to be told of them while it IDLEs.
        if (clock.GetUtcNow() >= foldersDue || (listedFolders is null && CanNotify(client)))
        {
            foldersProblem = await SyncOtherFoldersAsync(client, connection, sentFolder, ct);
            foldersDue = clock.GetUtcNow() + options.Value.PollInterval;
            await NotifyAsync(client, connection, ct);
        }
        else if (!notified.IsEmpty && listedFolders is not null)
        {
            foldersProblem = await SyncNotifiedFoldersAsync(client, connection, ct) ?? foldersProblem;
        }
        // The Inbox last: it stays selected for IDLE, and what lands in it while the others are read is read now.
        arrived = false;
        await SyncFolderAsync(client.Inbox, InboxCursor, connection, Received(connection, ct), analyze: true, ct);
    }

    Handler Received(MailboxConnection connection, CancellationToken ct) =>
        (message, providerId, received, analysis) => pipeline.HandleAsync(connection, providerId, message, null, received, ct, analysis);

    /// <summary>
    /// Special-use folders (RFC 6154) that hold no received mail, or only copies of what other folders hold: sent mail
    /// (read apart, for our sent copies), drafts, deleted mail, junk, and the virtual \All (Gmail's All Mail), \Flagged
    /// and \Important, which show again what is in other folders. \Archive is read: a rule that files answers there, or
    /// a user who archives them before the watch reads them, would otherwise hide them; where it holds what the Inbox
    /// also held, the pipeline knows the Message-ID and records it once.
    /// </summary>
    const FolderAttributes NotReceived = FolderAttributes.Sent | FolderAttributes.Drafts | FolderAttributes.Trash | FolderAttributes.Junk
        | FolderAttributes.All | FolderAttributes.Flagged | FolderAttributes.Important;

    /// <summary>The usual names of such folders, for servers that do not mark them (compared with a folder's own name, not its path).</summary>
    static readonly HashSet<string> NotReceivedNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Drafts", "Draft", "Templates", "Outbox", "Trash", "Deleted Items",
        "Deleted Messages", "Deleted", "Bin", "Junk", "Junk E-mail", "Junk Email", "Spam", "Bulk Mail", "All Mail",
    };

    /// <summary>
    /// The folders other than the Inbox where received mail can land: every selectable folder but the Sent folder and
    /// those <see cref="NotReceived"/> (by attribute or usual name), with the folders inside them (a "Trash/2024").
    /// </summary>
    public static List<IMailFolder> ReceivedFolders(IEnumerable<IMailFolder> folders, IMailFolder inbox, IMailFolder? sentFolder)
    {
        var list = folders.ToList();
        var skipped = list.Where(f => (f.Attributes & NotReceived) != 0 || NotReceivedNames.Contains(f.Name) || (sentFolder is not null && f.FullName == sentFolder.FullName))
            .Select(f => (f.FullName, f.DirectorySeparator)).ToList();
        return list.Where(f =>
                (f.Attributes & (FolderAttributes.NoSelect | FolderAttributes.NonExistent)) == 0
                && !f.FullName.Equals(inbox.FullName, StringComparison.OrdinalIgnoreCase)
                && !skipped.Any(s => f.FullName == s.FullName || (s.DirectorySeparator != '\0' && f.FullName.StartsWith(s.FullName + s.DirectorySeparator, StringComparison.Ordinal))))
            .GroupBy(f => f.FullName, StringComparer.Ordinal).Select(g => g.First())
            .ToList();
    }

    /// <summary>A folder's checkpoint name: its full name, or a hash of it where that is longer than a name may be.</summary>
    public static string FolderCursor(string fullName) => OtherFolders.CursorName(FolderCursorPrefix, fullName);

    /// <summary>
    /// Reads the other folders where received mail can land (<see cref="ReceivedFolders"/>), each from its own
    /// checkpoint. A folder whose checkpoint is current (STATUS: same UIDVALIDITY, nothing past its last UID) is not
    /// opened. A folder seen for the first time is read back from when the folders were last listed (a day earlier:
    /// SINCE compares dates), or the look-back at the mailbox's first reading, as the Inbox is at its first; so a folder
    /// a rule creates as it files an answer loses nothing, and a renamed folder costs at most a few days of its mail
    /// again (recognised by Message-ID). A folder gone from the list loses its checkpoint. A folder the server will not
    /// open is passed (the others are read), and named in the answer, which the mailbox shows.
    /// </summary>
    async Task<string?> SyncOtherFoldersAsync(ImapClient client, MailboxConnection connection, IMailFolder? sentFolder, CancellationToken ct)
    {
        IList<IMailFolder> listed;
        try
        {
            listed = await client.GetFoldersAsync(client.PersonalNamespaces[0], StatusItems.None, false, ct);
        }
        catch (ImapCommandException ex)
        {
            log.LogWarning("The folders of {Address} could not be listed: {Problem}", connection.Address, ex.Message);
            return $"The list of folders could not be read ({ex.Message}); only the Inbox and Sent were read.";
        }
        var folders = ReceivedFolders(listed, client.Inbox, sentFolder).ToDictionary(f => FolderCursor(f.FullName));
        var cursors = await db.MailboxCursors.Where(c => c.ConnectionId == connectionId && c.Name.StartsWith(FolderCursorPrefix)).ToListAsync(ct);
        var gone = cursors.Where(c => !folders.ContainsKey(c.Name)).ToList();
        if (gone.Count > 0)
        {
            // Deleted or renamed (a renamed folder is a new one under its new name), or now one that is not read.
            db.MailboxCursors.RemoveRange(gone);
            await db.SaveChangesAsync(ct);
        }
        var now = clock.GetUtcNow();
        var lookback = now.AddDays(-options.Value.LookbackDays);
        var lastListed = await db.MailboxCursors.FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == FoldersCursor, ct);
        var since = OtherFolders.FirstSince(lastListed, lookback);
        listedFolders = folders;
        foreach (var folder in folders.Values.Where(listening.Add))
        {
            // What the server tells of a folder (STATUS under NOTIFY, EXISTS while it is selected) marks it to be read.
            folder.CountChanged += FolderChanged;
            folder.UidNextChanged += FolderChanged;
        }
        var problems = new List<string>();
        foreach (var (name, folder) in folders)
        {
            if (await ReadOtherFolderAsync(client, connection, name, folder, cursors.FirstOrDefault(c => c.Name == name), since, ct) is { } problem)
            {
                problems.Add(problem);
            }
        }
        if (problems.Count > 0)
        {
            // Not marked as listed: a folder that could not be read first is read back from the last time all were.
            return $"Some folders could not be read ({string.Join("; ", problems)}); the others were.";
        }
        if (lastListed is null)
        {
            db.MailboxCursors.Add(new MailboxCursor { ConnectionId = connectionId, Name = FoldersCursor, Value = "listed", UpdatedAt = now });
        }
        else
        {
            lastListed.UpdatedAt = now;
        }
        await db.SaveChangesAsync(ct);
        return null;
    }

    /// <summary>
    /// Reads one of the other folders from its checkpoint (<paramref name="cursor"/>; null: read back from
    /// <paramref name="since"/>); one whose checkpoint is current (STATUS) is not opened. Answers what kept it from
    /// being read, or null.
    /// </summary>
    async Task<string?> ReadOtherFolderAsync(ImapClient client, MailboxConnection connection, string name, IMailFolder folder, MailboxCursor? cursor,
        DateTimeOffset since, CancellationToken ct)
    {
        try
        {
            if (cursor is not null)
            {
                await folder.StatusAsync(StatusItems.UidNext | StatusItems.UidValidity, ct);
                var (validity, lastUid) = ParseCursor(cursor.Value);
                if (validity == folder.UidValidity && folder.UidNext is { } next && next.Id <= lastUid + 1)
                {
                    // Current as of this STATUS: a mark from before it is answered (one from our own STATUS too).
                    notified.TryRemove(name, out _);
                    return null;
                }
            }
            await SyncFolderAsync(folder, name, connection, Received(connection, ct), analyze: true, ct, since);
            return null;
        }
        catch (Exception ex) when (ex is ImapCommandException or FolderNotFoundException || (ex is MailboxException && client.IsConnected))
        {
            // This folder only (it cannot be selected, went away since the list, or refuses a message for now, which
            // is asked for again at the next reading): the Inbox and the other folders are still read. A first checkpoint not saved
            // is dropped, or it would be saved with the next folder's as "read up to UID 0".
            foreach (var entry in db.ChangeTracker.Entries<MailboxCursor>().Where(e => e.State == EntityState.Added && e.Entity.Name == name).ToList())
            {
                entry.State = EntityState.Detached;
            }
            // Not asked for again before the poll: a folder that cannot be read would otherwise be tried at every wake.
            notified.TryRemove(name, out _);
            log.LogWarning("Folder {Folder} of {Address} could not be read: {Problem}", folder.FullName, connection.Address, ex.Message);
            return $"{folder.FullName}: {ex.Message}";
        }
    }

    /// <summary>
    /// Reads the folders the server named (NOTIFY) since they were last read, between two readings of them all. One
    /// not among those last listed (a Junk inside a folder that is read) is left to the listing.
    /// </summary>
    async Task<string?> SyncNotifiedFoldersAsync(ImapClient client, MailboxConnection connection, CancellationToken ct)
    {
        var lastListed = await db.MailboxCursors.AsNoTracking().FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == FoldersCursor, ct);
        var since = OtherFolders.FirstSince(lastListed, clock.GetUtcNow().AddDays(-options.Value.LookbackDays));
        var problems = new List<string>();
        foreach (var name in notified.Keys.ToList())
        {
            if (listedFolders is null || !listedFolders.TryGetValue(name, out var folder))
            {
                notified.TryRemove(name, out _);
                continue;
            }
            var cursor = await db.MailboxCursors.FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == name, ct);
            if (await ReadOtherFolderAsync(client, connection, name, folder, cursor, since, ct) is { } problem) problems.Add(problem);
        }
        return problems.Count > 0 ? $"Some folders could not be read ({string.Join("; ", problems)}); the others were." : null;
    }

    void FolderChanged(object? sender, EventArgs e)
    {
        if (sender is not IMailFolder folder) return;
        notified[FolderCursor(folder.FullName)] = 0;
        WakeUp();
    }

    void WakeUp()
    {
        try
        {
            idleDone?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // That IDLE has just ended anyway.
        }
    }

    /// <summary>NOTIFY only helps a watch that IDLEs: one that polls reads every folder at each poll anyway.</summary>
    static bool CanNotify(ImapClient client) =>
        client.Capabilities.HasFlag(ImapCapabilities.Notify) && client.Capabilities.HasFlag(ImapCapabilities.Idle);

    /// <summary>
    /// Past this many characters of folder names, NOTIFY names the personal namespace instead of each folder: servers
    /// cap a command line (Dovecot at 64 kB), and the folders not read are then told of too, and passed over here.
    /// </summary>
    const int NotifyNamesLimit = 8000;

    /// <summary>
    /// Asks the server (RFC 5465) to tell of new and expunged mail in the folders just listed (SUBTREE: with the
    /// folders a rule makes inside them) while the watch IDLEs, and keeps telling of the selected folder (the Inbox
    /// while the watch waits), which a NOTIFY would otherwise silence. SELECTED-DELAYED: the watch reads folders by
    /// UID, and the message numbers it does not use may then not shift under it. Asked again when the list changes. A
    /// server that refuses it is not asked again on this connection: the poll reads the folders as before.
    /// </summary>
    async Task NotifyAsync(ImapClient client, MailboxConnection connection, CancellationToken ct)
    {
        if (!CanNotify(client) || notifyRefused || listedFolders is null) return;
        var folders = listedFolders.Values.OrderBy(f => f.FullName, StringComparer.Ordinal).ToList();
        var covered = string.Join("\n", folders.Select(f => f.FullName));
        if (covered == notifyFor) return;
        var groups = new List<ImapEventGroup>
        {
            new(ImapMailboxFilter.SelectedDelayed, [new ImapEvent.MessageNew(), ImapEvent.MessageExpunge]),
        };
        if (folders.Count > 0)
        {
            var filter = folders.Sum(f => f.FullName.Length + 3) <= NotifyNamesLimit ? new ImapMailboxFilter.Subtree(folders) : ImapMailboxFilter.Personal;
            groups.Add(new ImapEventGroup(filter, [new ImapEvent.MessageNew(), ImapEvent.MessageExpunge]));
        }
        try
        {
            await client.NotifyAsync(false, groups, ct);
            notifyFor = covered;
        }
        catch (ImapCommandException ex)
        {
            notifyRefused = true;
            notifyFor = null;
            log.LogWarning("The IMAP server of {Address} refused NOTIFY ({Problem}); its other folders are read every poll interval", connection.Address, ex.Message);
        }
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

    /// <param name="firstSince">Where a folder without a checkpoint is read back from; null: the look-back.</param>
    async Task SyncFolderAsync(IMailFolder folder, string cursorName, MailboxConnection connection, Handler handle, bool analyze, CancellationToken ct,
        DateTimeOffset? firstSince = null)
    {
        var o = options.Value;
        await folder.OpenAsync(FolderAccess.ReadOnly, ct);
        // Whatever the server announced of this folder until now is read now (its SELECT's own EXISTS included).
        notified.TryRemove(cursorName, out _);
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
            var since = cursor is null ? firstSince ?? clock.GetUtcNow().AddDays(-o.LookbackDays) : cursor.UpdatedAt.AddDays(-1);
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
                MailboxException? later = null, after = null;
                try
                {
                    var classified = new List<InboundClassification>();
                    var classifiedAll = analyze;
                    long bytes = 0;
                    while (start < summaries.Count && (batch.Count == 0 || bytes + (summaries[start].Size ?? 0) <= BatchBytes))
                    {
                        var summary = summaries[start++];
                        var before = responses?.Received ?? 0;
                        var (read, problem, forNow, closed) = await ReadAsync(folder, summary.UniqueId, summary.Size, ct);
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
                        if (closed is not null)
                        {
                            // The connection is gone with this message: what was read is handled and this one noted, then
                            // the round stops and the next one connects again past it.
                            after = closed;
                            break;
                        }
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
                    if (after is not null) throw after;
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
    /// server refuses it for now, the problem that stops the round before it (<c>Later</c>); or, when reading it closed
    /// the connection, why it cannot be read and the problem that stops the round after it (<c>Closed</c>).
    /// </summary>
    async Task<(MimeMessage? Message, string? Problem, MailboxException? Later, MailboxException? Closed)> ReadAsync(
        IMailFolder folder, UniqueId uid, uint? size, CancellationToken ct)
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
            return (message, null, null, null);
        }
        catch (FormatException ex)
        {
            // MimeKit's ParseException is a FormatException: the message is malformed beyond repair.
            if (refusedSince.Count > 0) refusedSince.Remove(ProviderId(folder, uid));
            return (null, UnreadableMail.NotMime(ex), null, null);
        }
        catch (ImapCommandException ex) when (ex.Response == ImapCommandResponse.No)
        {
            // A lost connection or a BAD stops the round: the message is read again next time.
            var (message, problem, later) = Refused(folder, uid, ex);
            return (message, problem, later, null);
        }
        catch (Exception ex) when (TooLarge(ex) is { } tooLarge)
        {
            // The server sent far more for this message than it announced (RFC822.SIZE), past what one answer may hold
            // (ReplyLimitStream). It would send as much again at every round, each time closing the connection at the
            // same message: noted and passed instead, as a message the server will not send is.
            if (refusedSince.Count > 0) refusedSince.Remove(ProviderId(folder, uid));
            var announced = size is { } a ? string.Create(CultureInfo.InvariantCulture, $"{a:N0} bytes") : "no size";
            return (null, string.Create(CultureInfo.InvariantCulture,
                    $"the mail server sent more than {tooLarge.Limit:N0} bytes for it, though it announced {announced}; it was not read"),
                null,
                new MailboxException($"The IMAP server sent more for message UID {uid.Id} of {folder.FullName} than it announced, and the connection was closed; the message is noted as unreadable and the mailbox is read again.",
                    needsReconnect: false, ex));
        }
    }

    /// <summary>The reply limit's failure, wherever MailKit or TLS put it.</summary>
    static ReplyTooLargeException? TooLarge(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is ReplyTooLargeException tooLarge) return tooLarge;
        }
        return null;
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
        if (arrived || !notified.IsEmpty) return;
        if (!client.Capabilities.HasFlag(ImapCapabilities.Idle))
        {
            await Task.Delay(o.PollInterval, clock, ct);
            await client.NoOpAsync(ct);
            return;
        }
        if (arrived || !notified.IsEmpty) return;
        // Until the other folders are due to be read again (IDLE watches the Inbox, and under NOTIFY the folders the
        // server tells of), or IDLE's own restart.
        var idle = foldersDue - clock.GetUtcNow() is var due && due < o.IdleRestart ? due : o.IdleRestart;
        if (idle <= TimeSpan.Zero) return;
        using var done = new CancellationTokenSource(idle);
        idleDone = done;
        try
        {
            if (arrived || !notified.IsEmpty) return;
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
