using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Graph;
using Microsoft.Graph.Me.MailFolders.Item.Messages.Delta;
using Microsoft.Graph.Models;
using Microsoft.Graph.Models.ODataErrors;
using Microsoft.Kiota.Abstractions;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>What we keep about one Graph subscription (encrypted: the client state proves a notification is Microsoft's).</summary>
public sealed record GraphSubscriptionState(string Folder, string ClientState, DateTimeOffset ExpiresAt, bool Reauthorize = false);

/// <summary>
/// Watches one Microsoft 365 / Outlook.com mailbox. Delta queries on Inbox and Sent Items are the source of truth: each
/// round follows the stored delta link through its pages, hands every new message (its MIME) to the inbound pipeline
/// or the sent-mail scanner with its conversationId, and stores the next link only after a page's messages are handled.
/// Change notifications (subscriptions on both folders, renewed before they expire and recreated when Microsoft
/// removes them) only wake the watch early; without them it reads the mailbox every poll interval. The other folders
/// where received mail can land (an Outlook rule files answers in "Customers", the user archives them) are read every
/// <see cref="MailboxOptions.PollInterval"/>, each by its own delta, whether or not notifications come: see
/// <see cref="SyncOtherFoldersAsync"/>.
/// </summary>
public sealed class GraphWatch(
    AppDbContext db, GraphConnector graph, MailboxSecrets secrets, MailboxSignals signals, InboundPipeline pipeline, SentMailScanner sent,
    IOptions<MailboxOptions> mailboxOptions, IOptions<GraphOptions> graphOptions, TimeProvider clock, ILogger<GraphWatch> log) : IMailboxWatch
{
    public const string SubscriptionPrefix = "graph:subscription:";
    public const string Inbox = "inbox";
    public const string SentItems = "sentitems";

    /// <summary>Sent Items first: a copy's real Message-ID is known before answers to it are matched.</summary>
    static readonly string[] Folders = [SentItems, Inbox];

    public static string DeltaCursor(string folder) => "graph:delta:" + folder;

    /// <summary>Another folder's checkpoint is this and the folder's id (a hash of it, when the id is long).</summary>
    public const string FolderCursorPrefix = "graph:folder:";

    /// <summary>When the folders were last listed and all read: a folder that appears later is read back from then.</summary>
    public const string FoldersCursor = "graph:folders";

    /// <summary>When the other folders are read next; they are read at the first round.</summary>
    DateTimeOffset foldersDue = DateTimeOffset.MinValue;

    /// <summary>What kept some folder from being read at their last reading, shown on the mailbox; null when all were read.</summary>
    string? foldersProblem;

    Guid connectionId;

    public async Task RunAsync(Guid connectionId, CancellationToken ct)
    {
        this.connectionId = connectionId;
        var o = mailboxOptions.Value;
        var failures = 0;
        // When Inbox and Sent Items are read next without a notification (at once at the first round, and after a failure).
        var mailDue = DateTimeOffset.MinValue;
        var poked = false;
        while (!ct.IsCancellationRequested)
        {
            // The notification endpoints change subscription rows behind this long-lived context: read them afresh.
            db.ChangeTracker.Clear();
            var connection = await db.Mailboxes.AsNoTracking().FirstOrDefaultAsync(m => m.Id == connectionId, ct);
            if (connection is null || connection.Status == MailboxStatus.Disabled) return;
            if (!graph.IsConfigured)
            {
                await SetStatusAsync(connection.Status, GraphConnector.NotConfigured, ct);
                await Task.Delay(o.MaxBackoff, clock, ct);
                continue;
            }
            GraphSession session;
            try
            {
                session = graph.Open(connection);
            }
            catch (MailboxException ex)
            {
                await SetStatusAsync(MailboxStatus.NeedsReconnect, ex.Message, ct);
                return;
            }
            try
            {
                var notifications = await EnsureSubscriptionsAsync(session, ct);
                var wait = notifications.Active ? graphOptions.Value.SafetyPollInterval : o.PollInterval;
                // Woken only because the other folders are due: Inbox and Sent Items wait for their notification or poll.
                if (poked || clock.GetUtcNow() >= mailDue)
                {
                    mailDue = DateTimeOffset.MinValue;
                    foreach (var folder in Folders) await SyncFolderAsync(session, connection, folder, DeltaCursor(folder), null, ct);
                    mailDue = clock.GetUtcNow() + wait;
                }
                if (clock.GetUtcNow() >= foldersDue)
                {
                    foldersProblem = await SyncOtherFoldersAsync(session, connection, ct);
                    foldersDue = clock.GetUtcNow() + o.PollInterval;
                }
                failures = 0;
                var problem = notifications.Problem is null ? foldersProblem : foldersProblem is null ? notifications.Problem : notifications.Problem + " " + foldersProblem;
                await SetStatusAsync(MailboxStatus.Active, problem, ct, synced: true);
                var next = mailDue < foldersDue ? mailDue : foldersDue;
                poked = await signals.WaitAsync(connectionId, next - clock.GetUtcNow(), clock, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (MailboxGone)
            {
                return;
            }
            catch (Exception ex)
            {
                var problem = GraphConnector.Translate(ex, ct);
                if (ex is ApiException { ResponseStatusCode: 401 })
                {
                    // The access token was refused before it expired (revoked, or a policy changed): only a refused
                    // refresh means the user has to sign in again.
                    problem = await session.RefreshAfterRefusalAsync(ct)
                        ?? new MailboxException("Microsoft Graph refused the access token; a new one was obtained.", needsReconnect: false, ex);
                }
                failures++;
                TimeSpan? retryAfter = null;
                if (GraphConnector.IsThrottled(ex))
                {
                    // Still throttled after the SDK's own retries: calling again before Microsoft's Retry-After only
                    // makes it throttle longer.
                    var asked = GraphConnector.RetryAfter(ex, clock.GetUtcNow());
                    retryAfter = asked ?? TimeSpan.Zero;
                    var until = clock.GetUtcNow() + MailboxHealth.Wait(failures, o.MaxBackoff, retryAfter);
                    var said = asked is { } a ? $" (it asked to wait {a.TotalSeconds:0} s)" : "";
                    problem = new MailboxException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"Microsoft Graph is throttling this mailbox{said}; the next attempt is at {until.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC."),
                        needsReconnect: false, ex);
                }
                await MailboxHealth.AfterFailureAsync(problem, ex, failures, connection.Status, connection.Address,
                    (status, message) => SetStatusAsync(status, message, ct, failures: failures, generation: session.Secret.Generation),
                    o.MaxBackoff, clock, log, ct, retryAfter, reconnected: () => SignInChangedAsync(session.Secret.Generation, ct), checkEvery: o.Rescan);
            }
        }
    }


    // ---- the other folders ----

    /// <summary>A folder other than Inbox and Sent Items, as listed: its id, its path as the user sees it, and how many items it held.</summary>
    public sealed record ListedFolder(string Id, string Path, int? Count);

    /// <summary>
    /// Another folder's checkpoint: its delta link, and the folder's item count when that link was a delta link (null
    /// while it is a next link: pages are left to read, whatever the count says).
    /// </summary>
    public sealed record FolderCheckpoint(string Link, int? Count);

    static FolderCheckpoint? ReadCheckpoint(string? value)
    {
        if (value is null) return null;
        try
        {
            return JsonSerializer.Deserialize<FolderCheckpoint>(value) is { Link.Length: > 0 } checkpoint ? checkpoint : null;
        }
        catch (JsonException)
        {
            // Not one this code wrote: the folder is read again from where a new folder is, and recognised by Message-ID.
            return null;
        }
    }

    /// <summary>A folder's checkpoint name: its id, or a hash of it where that is longer than a name may be.</summary>
    public static string FolderCursor(string id) => OtherFolders.CursorName(FolderCursorPrefix, id);

    /// <summary>
    /// Well-known folders (by the names Graph takes in place of an id) that hold no received mail: sent mail (read apart,
    /// for our sent copies), drafts, deleted mail, junk, mail waiting to leave, Skype and Teams conversations, and
    /// Outlook's sync conflicts (Conflicts, Local and Server Failures are inside Sync Issues). The folders inside them are
    /// not read either (a "Deleted Items/Old project" holds deleted mail). Archive, Clutter and Scheduled (snoozed mail)
    /// are read: a rule or the user may put an answer there before the watch reads it; where one holds what the Inbox
    /// also held, the pipeline knows the Message-ID and records it once. Recoverable Items and Search Folders are not
    /// under the folders /me/mailFolders lists.
    /// </summary>
    public static readonly string[] NotReceived = [SentItems, "drafts", "deleteditems", "junkemail", "outbox", "conversationhistory", "syncissues"];

    /// <summary>Inbox's id and the ids of the <see cref="NotReceived"/> folders, learnt once per watch (a folder keeps its id).</summary>
    (string? Inbox, HashSet<string> Skipped)? wellKnown;

    /// <summary>
    /// Learns the well-known folders' ids with one JSON batch (POST /$batch, up to 20 requests, each answered with its
    /// own status): eight GETs in one request. A folder the mailbox lacks (404: not every mailbox has Conversation
    /// History or Sync Issues) is nothing to leave alone. A request the batch did not answer (throttled or failed on its
    /// own, or missing) is asked again on its own, where the SDK's retries apply; and where the batch fails as a whole
    /// (a proxy or cloud that will not take $batch, an answer that is not one), every folder is asked on its own.
    /// </summary>
    async Task<(string? Inbox, HashSet<string> Skipped)> WellKnownAsync(GraphSession session, CancellationToken ct)
    {
        if (wellKnown is { } known) return known;
        var names = NotReceived.Prepend(Inbox).ToList();
        var ids = new Dictionary<string, string?>(StringComparer.Ordinal);
        var alone = new List<string>();
        try
        {
            var batch = new BatchRequestContentCollection(session.Client);
            var steps = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var name in names)
            {
                var request = session.Client.Me.MailFolders[name].ToGetRequestInformation(rc => rc.QueryParameters.Select = ["id"]);
                steps[await batch.AddBatchRequestStepAsync(request)] = name;
            }
            var answer = await session.Client.Batch.PostAsync(batch, ct);
            var statuses = await answer.GetResponsesStatusCodesAsync();
            foreach (var (step, name) in steps)
            {
                if (!statuses.TryGetValue(step, out var status) || ((int)status is not (>= 200 and < 300) and not 404))
                {
                    alone.Add(name);
                    continue;
                }
                if ((int)status == 404) continue;
                var folder = await answer.GetResponseByIdAsync<MailFolder>(step);
                ids[name] = folder?.Id;
            }
        }
        catch (Exception ex) when (ex is ApiException or JsonException && !ct.IsCancellationRequested)
        {
            log.LogWarning("Microsoft Graph did not answer the batch of well-known folders ({Problem}); asking for each on its own", ex is ApiException a ? GraphConnector.Code(a) : ex.Message);
            ids.Clear();
            alone = names;
        }
        foreach (var name in alone)
        {
            try
            {
                var folder = await session.Client.Me.MailFolders[name].GetAsync(rc => rc.QueryParameters.Select = ["id"], ct);
                ids[name] = folder?.Id;
            }
            catch (ApiException ex) when (ex.ResponseStatusCode == 404)
            {
                // This mailbox has no such folder: nothing to leave alone.
            }
        }
        var inbox = ids.GetValueOrDefault(Inbox) is { Length: > 0 } i ? i : null;
        var skipped = new HashSet<string>(ids.Where(p => p.Key != Inbox && p.Value is { Length: > 0 }).Select(p => p.Value!), StringComparer.Ordinal);
        wellKnown = (inbox, skipped);
        return (inbox, skipped);
    }

    /// <summary>Folders asked for per page; Graph may answer fewer, with a next link.</summary>
    const int FolderPageSize = 100;

    static readonly string[] FolderFields = ["id", "displayName", "childFolderCount", "totalItemCount"];

    /// <summary>
    /// The folders where received mail can land, Inbox and Sent Items aside: every mail folder the user sees, with the
    /// folders inside them (Inbox's too: "Inbox/Customers" is where rules file most), but the <see cref="NotReceived"/>
    /// ones and what is inside them. Hidden folders (includeHiddenFolders) are not asked for: Outlook shows them nowhere,
    /// so neither a rule nor the user files mail in them. Each folder costs nothing here but its place in a page; a
    /// folder's children cost a request only where it has some (childFolderCount).
    /// </summary>
    async Task<List<ListedFolder>> ListFoldersAsync(GraphSession session, string? inboxId, HashSet<string> skipped, CancellationToken ct)
    {
        var found = new List<ListedFolder>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<(string? Id, string Path)>();
        pending.Enqueue((null, ""));
        var adapter = session.Client.RequestAdapter;
        while (pending.Count > 0)
        {
            var (parent, path) = pending.Dequeue();
            var page = parent is null
                ? await session.Client.Me.MailFolders.GetAsync(rc =>
                {
                    rc.QueryParameters.Top = FolderPageSize;
                    rc.QueryParameters.Select = FolderFields;
                }, ct)
                : await session.Client.Me.MailFolders[parent].ChildFolders.GetAsync(rc =>
                {
                    rc.QueryParameters.Top = FolderPageSize;
                    rc.QueryParameters.Select = FolderFields;
                }, ct);
            while (page is not null)
            {
                foreach (var folder in page.Value ?? [])
                {
                    // A folder moved while the list is paged can be seen twice.
                    if (folder.Id is not { Length: > 0 } id || skipped.Contains(id) || !seen.Add(id)) continue;
                    var where = path.Length == 0 ? folder.DisplayName ?? id : path + "/" + (folder.DisplayName ?? id);
                    if (folder.ChildFolderCount > 0) pending.Enqueue((id, where));
                    if (id != inboxId) found.Add(new ListedFolder(id, where, folder.TotalItemCount));
                }
                if (page.OdataNextLink is not { Length: > 0 } next) break;
                page = parent is null
                    ? await new Microsoft.Graph.Me.MailFolders.MailFoldersRequestBuilder(next, adapter).GetAsync(cancellationToken: ct)
                    : await new Microsoft.Graph.Me.MailFolders.Item.ChildFolders.ChildFoldersRequestBuilder(next, adapter).GetAsync(cancellationToken: ct);
            }
        }
        return found;
    }

    /// <summary>
    /// Reads the other folders where received mail can land (<see cref="ListFoldersAsync"/>), each by its own delta from
    /// its own checkpoint, every poll interval. Not driven by notifications: a subscription on me/messages notifies for
    /// every folder, Drafts (each draft saved) and Deleted Items (each message deleted) included, with the message's id
    /// only, so each notification would cost a request to learn the folder; and one subscription per folder runs into
    /// Exchange's limit of subscriptions per mailbox and is renewed one by one. Listing the folders instead is a request
    /// or two, and only a folder whose item count moved since its delta link was reached is read (and each at least every
    /// <see cref="GraphOptions.SafetyPollInterval"/>: an answer filed and another message deleted leave the count as it
    /// was). A folder seen for the first time is read back from when the folders were last listed (a day earlier), or the
    /// look-back at the mailbox's first reading, as the Inbox is at its first; so a folder a rule creates as it files an
    /// answer loses nothing. A folder gone from the list loses its checkpoint. A folder Graph will not read (gone since
    /// the list, refused to this app, an id it no longer takes) is passed, the others are read, and it is named in the
    /// answer, which the mailbox shows. Throttling and a refused sign-in stop the round, as for the Inbox.
    /// </summary>
    async Task<string?> SyncOtherFoldersAsync(GraphSession session, MailboxConnection connection, CancellationToken ct)
    {
        var (inboxId, skipped) = await WellKnownAsync(session, ct);
        var folders = new Dictionary<string, ListedFolder>(StringComparer.Ordinal);
        foreach (var folder in await ListFoldersAsync(session, inboxId, skipped, ct)) folders.TryAdd(FolderCursor(folder.Id), folder);
        var cursors = await db.MailboxCursors.AsNoTracking().Where(c => c.ConnectionId == connectionId && c.Name.StartsWith(FolderCursorPrefix)).ToListAsync(ct);
        var gone = cursors.Where(c => !folders.ContainsKey(c.Name)).Select(c => c.Name).ToList();
        if (gone.Count > 0)
        {
            // Deleted, or moved into Deleted Items; a folder moved elsewhere keeps its id, and its checkpoint.
            await db.MailboxCursors.Where(c => c.ConnectionId == connectionId && gone.Contains(c.Name)).ExecuteDeleteAsync(ct);
        }
        var now = clock.GetUtcNow();
        var lookback = now.AddDays(-mailboxOptions.Value.LookbackDays);
        var lastListed = await db.MailboxCursors.AsNoTracking().FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == FoldersCursor, ct);
        var since = OtherFolders.FirstSince(lastListed, lookback);
        var problems = new List<string>();
        foreach (var (name, folder) in folders)
        {
            var cursor = cursors.FirstOrDefault(c => c.Name == name);
            if (cursor is not null && ReadCheckpoint(cursor.Value) is { Count: { } count } && count == folder.Count
                && now - cursor.UpdatedAt < graphOptions.Value.SafetyPollInterval)
            {
                continue;
            }
            try
            {
                await SyncFolderAsync(session, connection, folder.Id, name, folder, ct, since);
            }
            catch (ApiException ex) when (ex.ResponseStatusCode is 400 or 403 or 404)
            {
                // This folder only: the Inbox and the other folders are still read, and this one again next time.
                log.LogWarning("Folder {Folder} of {Address} could not be read: {Problem}", folder.Path, connection.Address, GraphConnector.Code(ex));
                problems.Add($"{folder.Path}: {GraphConnector.Code(ex)}");
            }
        }
        if (problems.Count > 0)
        {
            // Not marked as listed: a folder that could not be read first is read back from the last time all were.
            return $"Some folders could not be read ({string.Join("; ", problems)}); the others were.";
        }
        await SaveCursorAsync(FoldersCursor, "listed", ct);
        return null;
    }

    // ---- delta ----

    /// <summary>
    /// Reads a folder from its checkpoint <paramref name="name"/>: Inbox or Sent Items (by well-known name, the checkpoint
    /// is the delta link), or another folder (<paramref name="other"/>, by id, the checkpoint a <see cref="FolderCheckpoint"/>).
    /// </summary>
    /// <param name="firstSince">Where a folder without a checkpoint is read back from; null: the look-back.</param>
    async Task SyncFolderAsync(GraphSession session, MailboxConnection connection, string folder, string name, ListedFolder? other, CancellationToken ct,
        DateTimeOffset? firstSince = null)
    {
        var cursor = await db.MailboxCursors.AsNoTracking().FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == name, ct);
        var link = other is null ? cursor?.Value : ReadCheckpoint(cursor?.Value)?.Link;
        var label = other?.Path ?? folder;
        var isSent = other is null && folder == SentItems;
        DeltaGetResponse? page;
        try
        {
            page = await FirstPageAsync(session, folder, link, firstSince, ct);
        }
        catch (ApiException ex) when (cursor is not null && IsSyncStateGone(ex))
        {
            // Microsoft forgot the sync state: read the folder again from the look-back. The pipeline and the scanner
            // recognise what they handled before, so nothing counts twice.
            log.LogWarning("The delta link of {Folder} of {Address} expired ({Code}); reading the folder again", label, connection.Address, GraphConnector.Code(ex));
            page = await FirstPageAsync(session, folder, null, null, ct);
        }
        while (true)
        {
            foreach (var message in page?.Value ?? [])
            {
                if (message.Id is null || message.AdditionalData.ContainsKey("@removed")) continue;
                await HandleAsync(session, connection, label, isSent, message, ct);
            }
            var next = page?.OdataNextLink ?? page?.OdataDeltaLink
                ?? throw new MailboxException("Microsoft Graph answered a delta query with neither a next nor a delta link.", needsReconnect: false);
            // The folder's item count is kept with its delta link only: a folder left at a next link is read again
            // whatever its count says.
            await SaveCursorAsync(name, other is null ? next
                : JsonSerializer.Serialize(new FolderCheckpoint(next, page?.OdataNextLink is null ? other.Count : null)), ct);
            if (page?.OdataNextLink is null) return;
            page = await new DeltaRequestBuilder(page.OdataNextLink, session.Client.RequestAdapter)
                .GetAsDeltaGetResponseAsync(rc => rc.Headers.Add("Prefer", $"odata.maxpagesize={graphOptions.Value.PageSize}"), ct);
        }
    }

    /// <summary>
    /// Stores a folder's checkpoint directly (the pipeline clears the context's tracked entities when it records a
    /// message, so a tracked cursor could silently not be saved).
    /// </summary>
    async Task SaveCursorAsync(string name, string value, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var updated = await db.MailboxCursors.Where(c => c.ConnectionId == connectionId && c.Name == name)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.Value, value).SetProperty(c => c.UpdatedAt, now), ct);
        if (updated > 0) return;
        db.ChangeTracker.Clear();
        db.MailboxCursors.Add(new MailboxCursor { ConnectionId = connectionId, Name = name, Value = value, UpdatedAt = now });
        await db.SaveChangesAsync(ct);
    }

    /// <summary>The stored link's next page; without one, a new delta from the look-back on (only created messages).</summary>
    async Task<DeltaGetResponse?> FirstPageAsync(GraphSession session, string folder, string? link, DateTimeOffset? firstSince, CancellationToken ct)
    {
        var prefer = $"odata.maxpagesize={graphOptions.Value.PageSize}";
        if (link is not null)
        {
            return await new DeltaRequestBuilder(link, session.Client.RequestAdapter).GetAsDeltaGetResponseAsync(rc => rc.Headers.Add("Prefer", prefer), ct);
        }
        var since = (firstSince ?? clock.GetUtcNow().AddDays(-mailboxOptions.Value.LookbackDays)).UtcDateTime;
        return await session.Client.Me.MailFolders[folder].Messages.Delta.GetAsDeltaGetResponseAsync(rc =>
        {
            rc.QueryParameters.Select = ["id", "conversationId", "internetMessageId", "receivedDateTime"];
            // The only filter delta on messages takes; it is kept inside the links that follow.
            rc.QueryParameters.Filter = $"receivedDateTime ge {since:yyyy-MM-ddTHH:mm:ssZ}";
            rc.QueryParameters.ChangeType = "created";
            rc.Headers.Add("Prefer", prefer);
        }, ct);
    }

    static bool IsSyncStateGone(ApiException ex) =>
        ex.ResponseStatusCode == 410
        || ex is ODataError { Error.Code: { } code } && (code.Equals("syncStateNotFound", StringComparison.OrdinalIgnoreCase)
            || code.Equals("resyncRequired", StringComparison.OrdinalIgnoreCase) || code.Equals("syncStateInvalid", StringComparison.OrdinalIgnoreCase));

    /// <param name="folder">Where the message is, as the user knows it (for the note of a message that cannot be read).</param>
    /// <param name="isSent">Sent Items: the message is a sent copy, for the sent-mail scanner.</param>
    async Task HandleAsync(GraphSession session, MailboxConnection connection, string folder, bool isSent, Message message, CancellationToken ct)
    {
        MimeMessage? mime;
        string? problem;
        long? size;
        try
        {
            try
            {
                (mime, problem, size) = await ReadMimeAsync(session, message.Id!, ct);
            }
            catch (ApiException ex) when (IsMimeUnconvertible(ex))
            {
                // Exchange cannot give this item as MIME (S/MIME signed or encrypted mail, reports about it) and answers
                // the same on every try: as a failed round, it held the folder at this message for good. Matched and
                // classified from its headers alone, as a message over the size limit is; without any, noted and passed.
                (mime, problem, size) = (await ReadHeadersAsync(session, message.Id!, ct), $"Microsoft Graph cannot give it as MIME ({GraphConnector.Code(ex)})", null);
            }
        }
        catch (ApiException ex) when (ex.ResponseStatusCode == 404)
        {
            log.LogInformation("Message {Id} of {Address} was gone before it could be read", message.Id, connection.Address);
            return;
        }
        if (mime is null)
        {
            log.LogWarning("Message {Id} of {Address} could not be parsed ({Problem}); noted and passed", message.Id, connection.Address, problem);
            await UnreadableMail.NoteAsync(db, connection, "graph:" + message.Id, folder, problem ?? "not a readable MIME message", size,
                message.ReceivedDateTime, clock.GetUtcNow(), save: true, ct);
            return;
        }
        // Disposed when handled: a MimeKit message left to its finalizer survives a collection with all its parts.
        using (mime)
        {
            try
            {
                if (isSent)
                {
                    await sent.HandleAsync(connection, mime, message.ConversationId, ct);
                }
                else
                {
                    await pipeline.HandleAsync(connection, "graph:" + message.Id, mime, message.ConversationId, message.ReceivedDateTime, ct);
                }
            }
            catch (Exception ex) when (UnreadableMail.IsPoison(ex, ct))
            {
                // One message the code cannot handle must not hold the mailbox back: noted, and the delta goes on.
                log.LogError(ex, "Message {Id} of {Address} could not be handled; noted and passed", message.Id, connection.Address);
                UnreadableMail.ForgetUnsaved(db);
                await UnreadableMail.NoteAsync(db, connection, "graph:" + message.Id, folder, UnreadableMail.NotHandled(ex), size,
                    message.ReceivedDateTime, clock.GetUtcNow(), save: true, ct);
            }
        }
    }

    /// <summary>
    /// The message's MIME (GET /messages/{id}/$value); its headers alone when it is larger than the limit; or why it
    /// cannot be read, with the bytes received.
    /// </summary>
    async Task<(MimeMessage? Message, string? Problem, long? Size)> ReadMimeAsync(GraphSession session, string id, CancellationToken ct)
    {
        var max = mailboxOptions.Value.MaxMessageBytes;
        await using var stream = await session.Client.Me.Messages[id].Content.GetAsync(cancellationToken: ct);
        if (stream is null) return (null, "Microsoft Graph answered no content for the message", null);
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct)) > 0)
        {
            buffer.Write(chunk, 0, n);
            if (buffer.Length > max) break;
        }
        buffer.Position = 0;
        try
        {
            if (buffer.Length <= max) return (await MimeMessage.LoadAsync(buffer, ct), null, buffer.Length);
            var parser = new MimeParser(buffer, MimeFormat.Entity);
            var headers = await parser.ParseHeadersAsync(ct);
            var message = new MimeMessage();
            message.Headers.Clear();
            foreach (var h in headers) message.Headers.Add(h);
            return (message, null, buffer.Length);
        }
        catch (FormatException ex)
        {
            return (null, UnreadableMail.NotMime(ex), buffer.Length);
        }
    }

    /// <summary>What Exchange answers, every time, for an item it cannot convert to MIME.</summary>
    static bool IsMimeUnconvertible(ApiException ex) =>
        ex is ODataError { Error.Code: { } code } && (code.Equals("ErrorMimeContentConversionFailed", StringComparison.OrdinalIgnoreCase)
            || code.Equals("ErrorContentConversionFailed", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The message's internet headers (Graph's internetMessageHeaders) as a message without a body; null when Graph
    /// gives none (it keeps none for items in Sent Items). Each value is taken as the message's own bytes, as for
    /// Gmail's metadata: decoded text and RFC 2047 encoded-words both read right.
    /// </summary>
    static async Task<MimeMessage?> ReadHeadersAsync(GraphSession session, string id, CancellationToken ct)
    {
        var item = await session.Client.Me.Messages[id].GetAsync(rc => rc.QueryParameters.Select = ["internetMessageHeaders"], ct);
        if (item?.InternetMessageHeaders is not { Count: > 0 } headers) return null;
        var message = new MimeMessage();
        message.Headers.Clear();
        foreach (var h in headers)
        {
            if (string.IsNullOrEmpty(h.Name)) continue;
            try
            {
                var header = new Header(h.Name, "");
                header.SetRawValue(Encoding.UTF8.GetBytes(" " + Header.Unfold(h.Value ?? "").Trim() + "\r\n"));
                message.Headers.Add(header);
            }
            catch (ArgumentException)
            {
                // A name MimeKit refuses is nothing we match on.
            }
        }
        return message;
    }

    // ---- subscriptions ----

    sealed record NotificationState(bool Active, string? Problem);

    /// <summary>Why Microsoft last refused to notify this server of the mailbox's mail, until when that answer stands.</summary>
    string? subscribeProblem;
    DateTimeOffset subscribeAgainAt;

    /// <summary>
    /// Makes sure both folders have a live subscription: creates what is missing, renews what expires soon, and
    /// reauthorizes what Microsoft asked for. A failure here is not fatal (the mailbox is polled instead), unless the
    /// sign-in itself is gone. A 403 here refuses the subscription, not the mailbox (the tenant forbids subscriptions,
    /// or the notification URL is not allowed): delta still reads the mail, and a 403 on the mail itself is what marks
    /// the mailbox for reconnecting.
    /// </summary>
    async Task<NotificationState> EnsureSubscriptionsAsync(GraphSession session, CancellationToken ct)
    {
        var g = graphOptions.Value;
        if (string.IsNullOrWhiteSpace(g.NotificationUrl)) return new NotificationState(false, null);
        // Refused (a tenant that forbids subscriptions answers the same every time): asked again in an hour, as Gmail's
        // users.watch is, not twice at every poll of the mailbox it is polled at meanwhile.
        if (subscribeProblem is not null && clock.GetUtcNow() < subscribeAgainAt) return new NotificationState(false, subscribeProblem);
        var rows = await db.MailboxCursors.Where(c => c.ConnectionId == connectionId && c.Name.StartsWith(SubscriptionPrefix)).ToListAsync(ct);
        var problems = new List<string>();
        foreach (var folder in Folders)
        {
            try
            {
                await EnsureSubscriptionAsync(session, folder, rows, ct);
            }
            catch (Exception ex) when (ex is not MailboxGone && (ex is not OperationCanceledException || !ct.IsCancellationRequested))
            {
                var problem = ex is ApiException { ResponseStatusCode: 403 } forbidden
                    ? new MailboxException($"Microsoft Graph refused the subscription ({GraphConnector.Code(forbidden)})", needsReconnect: false, ex)
                    : GraphConnector.Translate(ex, ct);
                // The sign-in itself: handled as a failed round (a refused token is refreshed first). Throttling too:
                // the round stops and waits, rather than ask Microsoft for the mail at once.
                if (problem is MailboxException { NeedsReconnect: true } || GraphConnector.IsThrottled(ex)) throw;
                log.LogWarning(ex, "Could not subscribe to {Folder} of mailbox {Id}", folder, connectionId);
                problems.Add($"{folder}: {problem.Message}");
            }
        }
        await db.SaveChangesAsync(ct);
        if (problems.Count == 0)
        {
            subscribeProblem = null;
            return new NotificationState(true, null);
        }
        var every = mailboxOptions.Value.PollInterval;
        subscribeProblem = $"Microsoft cannot notify this server of new mail ({string.Join("; ", problems)}); the mailbox is read every {every.TotalSeconds:0} s instead.";
        subscribeAgainAt = clock.GetUtcNow() + TimeSpan.FromHours(1);
        return new NotificationState(false, subscribeProblem);
    }

    async Task EnsureSubscriptionAsync(GraphSession session, string folder, List<MailboxCursor> rows, CancellationToken ct)
    {
        var g = graphOptions.Value;
        var now = clock.GetUtcNow();
        MailboxCursor? row = null;
        GraphSubscriptionState? state = null;
        foreach (var r in rows)
        {
            var s = secrets.Unprotect<GraphSubscriptionState>(r.Value);
            if (s is null)
            {
                db.MailboxCursors.Remove(r);
                continue;
            }
            if (s.Folder != folder) continue;
            if (row is null && s.ExpiresAt > now)
            {
                row = r;
                state = s;
            }
            else
            {
                // A second or an expired subscription for this folder: forget it (Microsoft ends it at its expiry).
                db.MailboxCursors.Remove(r);
                await DeleteQuietlyAsync(session, Id(r), ct);
            }
        }
        if (row is not null && state is not null)
        {
            var id = Id(row);
            try
            {
                if (state.Reauthorize)
                {
                    await session.Client.Subscriptions[id].Reauthorize.PostAsync(cancellationToken: ct);
                    state = state with { Reauthorize = false };
                    row.Value = secrets.Protect(state);
                    row.UpdatedAt = now;
                }
                if (state.ExpiresAt - now < g.RenewBefore)
                {
                    var renewed = await session.Client.Subscriptions[id].PatchAsync(new Subscription { ExpirationDateTime = now + g.SubscriptionLifetime }, cancellationToken: ct);
                    state = state with { ExpiresAt = renewed?.ExpirationDateTime ?? now + g.SubscriptionLifetime };
                    row.Value = secrets.Protect(state);
                    row.UpdatedAt = now;
                    log.LogInformation("Renewed the subscription to {Folder} of mailbox {Id} until {Until:u}", folder, connectionId, state.ExpiresAt);
                }
                return;
            }
            catch (ApiException ex) when (ex.ResponseStatusCode == 404)
            {
                // Microsoft removed it: subscribe again.
                db.MailboxCursors.Remove(row);
            }
        }
        var clientState = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        Subscription? created;
        // Not given up when the watch is stopped (the mailbox was disconnected meanwhile): Microsoft goes on with a
        // create whose caller hung up, and only its answer names the subscription to delete.
        using (var createTime = new CancellationTokenSource(SubscriptionCallTime))
        {
            created = await session.Client.Subscriptions.PostAsync(new Subscription
            {
                ChangeType = "created",
                NotificationUrl = g.NotificationUrl,
                LifecycleNotificationUrl = g.LifecycleUrl,
                Resource = $"me/mailFolders('{folder}')/messages",
                ExpirationDateTime = now + g.SubscriptionLifetime,
                ClientState = clientState,
            }, cancellationToken: createTime.Token);
        }
        if (created?.Id is not { Length: > 0 } newId) throw new MailboxException("Microsoft Graph created a subscription without an id.", needsReconnect: false);
        var name = SubscriptionPrefix + newId;
        db.MailboxCursors.Add(new MailboxCursor
        {
            ConnectionId = connectionId, Name = name, UpdatedAt = now,
            Value = secrets.Protect(new GraphSubscriptionState(folder, clientState, created.ExpirationDateTime ?? now + g.SubscriptionLifetime)),
        });
        // Kept first, then checked: a disconnect that read the mailbox's subscriptions before this row was kept has
        // marked the mailbox disabled already (see MailboxService.RemoveAsync), so one of the two deletes it.
        bool own;
        try
        {
            await db.SaveChangesAsync(CancellationToken.None);
            own = await StillOwnAsync(session);
        }
        catch (DbUpdateException)
        {
            // The mailbox row is gone: its cursors cannot be kept.
            db.ChangeTracker.Clear();
            own = false;
        }
        if (!own)
        {
            log.LogInformation("Mailbox {Id} was disconnected while subscribing to {Folder}; the new subscription is deleted", connectionId, folder);
            using var deleteTime = new CancellationTokenSource(SubscriptionCallTime);
            await DeleteQuietlyAsync(session, newId, deleteTime.Token);
            await db.MailboxCursors.Where(c => c.ConnectionId == connectionId && c.Name == name).ExecuteDeleteAsync(CancellationToken.None);
            throw new MailboxGone();
        }
        log.LogInformation("Subscribed to {Folder} of mailbox {Id} ({Subscription})", folder, connectionId, newId);
    }

    /// <summary>How long creating or deleting a subscription may take when the watch itself is being stopped.</summary>
    static readonly TimeSpan SubscriptionCallTime = TimeSpan.FromSeconds(30);

    /// <summary>The mailbox is still connected, and still to the Microsoft account this watch signed in with.</summary>
    async Task<bool> StillOwnAsync(GraphSession session)
    {
        var stored = await db.Mailboxes.AsNoTracking().Where(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled)
            .Select(m => m.ProtectedSecret).FirstOrDefaultAsync(CancellationToken.None);
        return stored is not null && secrets.Unprotect<GraphSecret>(stored)?.HomeAccountId == session.Secret.HomeAccountId;
    }

    /// <summary>The mailbox was disconnected (or connected to another account) under the watch: it ends.</summary>
    sealed class MailboxGone() : Exception("The mailbox was disconnected.");

    static string Id(MailboxCursor row) => row.Name[SubscriptionPrefix.Length..];

    async Task DeleteQuietlyAsync(GraphSession session, string id, CancellationToken ct)
    {
        try
        {
            await session.Client.Subscriptions[id].DeleteAsync(cancellationToken: ct);
        }
        catch (ApiException)
        {
            // Already gone, or it ends by itself at its expiry.
        }
    }

    // ---- status ----

    /// <summary>
    /// The mailbox was signed in again (another generation, on any instance), or is gone. By generation, not by the
    /// stored secret: MSAL writes its token cache back into it, also when a refresh was refused.
    /// </summary>
    async Task<bool> SignInChangedAsync(Guid tried, CancellationToken ct)
    {
        var stored = await db.Mailboxes.AsNoTracking().Where(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled)
            .Select(m => m.ProtectedSecret).FirstOrDefaultAsync(ct);
        return stored is null || secrets.Unprotect<GraphSecret>(stored)?.Generation != tried;
    }

    /// <param name="generation">A failure is only recorded while the sign-in that failed is still the stored one:
    /// the user may have connected the mailbox again meanwhile.</param>
    async Task SetStatusAsync(MailboxStatus status, string? message, CancellationToken ct, bool synced = false, int failures = 0, Guid? generation = null)
    {
        var now = clock.GetUtcNow();
        var q = db.Mailboxes.Where(m => m.Id == connectionId && m.Status != MailboxStatus.Disabled);
        if (generation is { } expected)
        {
            var stored = await db.Mailboxes.Where(m => m.Id == connectionId).Select(m => m.ProtectedSecret).FirstOrDefaultAsync(ct);
            if (stored is null || secrets.Unprotect<GraphSecret>(stored)?.Generation != expected) return;
            q = q.Where(m => m.ProtectedSecret == stored);
        }
        await MailboxHealth.SetStatusAsync(q, status, message, now, synced, failures, ct);
    }
}
