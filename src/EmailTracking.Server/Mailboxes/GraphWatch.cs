using System.Security.Cryptography;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
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
/// removes them) only wake the watch early; without them it reads the mailbox every poll interval.
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

    Guid connectionId;

    public async Task RunAsync(Guid connectionId, CancellationToken ct)
    {
        this.connectionId = connectionId;
        var o = mailboxOptions.Value;
        var failures = 0;
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
                foreach (var folder in Folders) await SyncFolderAsync(session, connection, folder, ct);
                failures = 0;
                await SetStatusAsync(MailboxStatus.Active, notifications.Problem, ct, synced: true);
                var wait = notifications.Active ? graphOptions.Value.SafetyPollInterval : o.PollInterval;
                await signals.WaitAsync(connectionId, wait, clock, ct);
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


    // ---- delta ----

    async Task SyncFolderAsync(GraphSession session, MailboxConnection connection, string folder, CancellationToken ct)
    {
        var name = DeltaCursor(folder);
        var cursor = await db.MailboxCursors.AsNoTracking().FirstOrDefaultAsync(c => c.ConnectionId == connectionId && c.Name == name, ct);
        DeltaGetResponse? page;
        try
        {
            page = await FirstPageAsync(session, folder, cursor?.Value, ct);
        }
        catch (ApiException ex) when (cursor is not null && IsSyncStateGone(ex))
        {
            // Microsoft forgot the sync state: read the folder again from the look-back. The pipeline and the scanner
            // recognise what they handled before, so nothing counts twice.
            log.LogWarning("The delta link of {Folder} of {Address} expired ({Code}); reading the folder again", folder, connection.Address, GraphConnector.Code(ex));
            page = await FirstPageAsync(session, folder, null, ct);
        }
        while (true)
        {
            foreach (var message in page?.Value ?? [])
            {
                if (message.Id is null || message.AdditionalData.ContainsKey("@removed")) continue;
                await HandleAsync(session, connection, folder, message, ct);
            }
            var next = page?.OdataNextLink ?? page?.OdataDeltaLink
                ?? throw new MailboxException("Microsoft Graph answered a delta query with neither a next nor a delta link.", needsReconnect: false);
            await SaveCursorAsync(name, next, ct);
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
    async Task<DeltaGetResponse?> FirstPageAsync(GraphSession session, string folder, string? link, CancellationToken ct)
    {
        var prefer = $"odata.maxpagesize={graphOptions.Value.PageSize}";
        if (link is not null)
        {
            return await new DeltaRequestBuilder(link, session.Client.RequestAdapter).GetAsDeltaGetResponseAsync(rc => rc.Headers.Add("Prefer", prefer), ct);
        }
        var since = clock.GetUtcNow().AddDays(-mailboxOptions.Value.LookbackDays).UtcDateTime;
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

    async Task HandleAsync(GraphSession session, MailboxConnection connection, string folder, Message message, CancellationToken ct)
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
                if (folder == SentItems)
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
