using System.Data.Common;
using System.Text.Json;
using System.Text.Json.Serialization;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Replies.Classification;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using MimeKit;

namespace EmailTracking.Server.Replies;

public enum InboundOutcome { Recorded, Duplicate, OwnMail, NotMatched }

public sealed record InboundResult(InboundOutcome Outcome, EventKind? Kind = null, string? Detail = null);

/// <summary>
/// What happens to a message that arrived in a connected mailbox: match it to a tracked message (In-Reply-To, then
/// every References id, then the provider's thread id, then Outlook's Thread-Index; for bounces, complaints and receipts also
/// the original Message-ID they quote), classify it, and record it with an event for the live feed. The user's own
/// mail never counts. Handling the same message twice records it once.
/// </summary>
public sealed class InboundPipeline(AppDbContext db, InboundClassifier classifier, FeedNotifier feed, TimeProvider clock, ILogger<InboundPipeline> log)
{
    /// <summary>References beyond this many ids are not looked at (a header bomb or a loop cannot make a query huge).</summary>
    public const int MaxReferences = 100;

    /// <param name="analysis">The message's classification and match when the caller worked them out for a batch
    /// of messages at once (<see cref="AnalyzeManyAsync"/>); otherwise they are worked out here.</param>
    public async Task<InboundResult> HandleAsync(MailboxConnection connection, string providerId, MimeMessage message, string? providerThreadId,
        DateTimeOffset? receivedAt, CancellationToken ct, Analysis? analysis = null)
    {
        var messageId = Clean(message.MessageId);
        if (await db.InboundMessages.AnyAsync(i => (i.ConnectionId == connection.Id && i.ProviderId == providerId)
                || (messageId != null && i.UserId == connection.UserId && i.InternetMessageId == messageId), ct))
        {
            return new InboundResult(InboundOutcome.Duplicate);
        }

        var from = Author(message);
        // Addresses compare by AccountService.AddressKey: a domain in punycode and in Unicode is one mailbox.
        if (from is not null)
        {
            var fromForms = AccountService.StoredForms(from);
            if (AccountService.SameAddress(from, connection.Address)
                || await db.UserAddresses.AnyAsync(a => a.UserId == connection.UserId && fromForms.Contains(a.Address), ct))
                return new InboundResult(InboundOutcome.OwnMail);
        }

        var (classification, match) = analysis ?? await AnalyzeAsync(connection.UserId, message, providerThreadId, ct);
        if (match is null) return new InboundResult(InboundOutcome.NotMatched, Detail: classification.Reason);

        var kind = classification.Kind switch
        {
            InboundKind.AutoReply => EventKind.AutoReply,
            InboundKind.Bounce => EventKind.Bounce,
            InboundKind.Complaint => EventKind.Complaint,
            InboundKind.Receipt => EventKind.Receipt,
            // A person, or (never from a parsed message) unreadable: someone in the thread wrote.
            _ => EventKind.Reply,
        };
        // The message's recipients by AccountService.AddressKey, each key read once (the first recipient of a key wins).
        var recipients = new Dictionary<string, (Guid Id, RecipientRole Role)>(StringComparer.Ordinal);
        foreach (var row in await db.Recipients.Where(r => r.TrackedMessageId == match.MessageId).Select(r => new { r.Id, r.Address, r.Role }).ToListAsync(ct))
            recipients.TryAdd(AccountService.AddressKey(row.Address), (row.Id, row.Role));
        (Guid Id, RecipientRole Role)? Recipient(string? address) =>
            address is not null && recipients.TryGetValue(AccountService.AddressKey(address), out var found) ? found : null;
        var author = from ?? "(unknown sender)";
        var known = Recipient(from);
        var role = known is null ? ReplierRole.New : (ReplierRole)(int)known.Value.Role;
        var now = clock.GetUtcNow();
        var occurred = (receivedAt ?? (message.Date == DateTimeOffset.MinValue ? now : message.Date)).ToUniversalTime();

        // Which recipients the event is about: a bounce names the addresses that failed; anything else is about its
        // author when they were a recipient, or else about the person this copy went to (a forward, a colleague).
        var about = new List<Guid?>();
        if (kind is EventKind.Bounce or EventKind.Complaint or EventKind.Receipt)
        {
            foreach (var failed in classification.Recipients)
            {
                // The address the report says failed, or the one the mail was sent to when an alias or a list turned it
                // into another (Original-Recipient): sales@ expanded to bob@ is a bounce of the recipient sales@. A
                // receipt names the mailbox it is from (Final-Recipient) the same way.
                if ((Recipient(failed.Address) ?? Recipient(failed.SentTo)) is { } failedOne && !about.Contains(failedOne.Id)) about.Add(failedOne.Id);
            }
        }
        if (about.Count == 0 && known is { } replier) about.Add(replier.Id);
        if (about.Count == 0) about.Add(match.RecipientId);
        // A read receipt of a message its reader displayed is an open by that reader, counted as the pixel's are: it
        // shows even where the reader's client blocks images. The inbound message stays a receipt, which no sequence acts on.
        var eventKind = kind == EventKind.Receipt && classification.Opened ? EventKind.Open : kind;

        var reason = Reason(kind, role, author, classification);
        var inbound = new InboundMessage
        {
            TeamId = match.TeamId,
            UserId = connection.UserId,
            ConnectionId = connection.Id,
            ProviderId = providerId,
            InternetMessageId = messageId,
            FromAddress = Cut(author, 320)!,
            Subject = Cut(message.Subject, 1000),
            ReceivedAt = occurred,
            Kind = kind,
            Reason = Cut(classification.Reason, 300)!,
            TrackedMessageId = match.MessageId,
            CopyId = match.CopyId,
            RecipientId = about[0],
            MatchedBy = match.By,
            ReplierRole = role,
            ReturnDate = classification.ReturnDate,
            ReturnDateOffsetMinutes = classification.ReturnDateOffset is { } offset ? (int)offset.TotalMinutes : null,
            // Only an auto-reply is ever said to be departed (InboundClassifier.AutoReply).
            Departed = classification.Departed,
            Status = Cut(classification.Status, 20),
            Permanent = classification.Permanent,
            Excerpt = Cut(Excerpt(message), 500),
            HandledAt = now,
        };
        var events = about.Select(recipientId => new TrackingEvent
        {
            TeamId = match.TeamId,
            UserId = connection.UserId,
            TrackedMessageId = match.MessageId,
            CopyId = match.CopyId,
            RecipientId = recipientId,
            Kind = eventKind,
            OccurredAt = occurred,
            FromAddress = Cut(author, 320),
            Verdict = eventKind is EventKind.Reply or EventKind.Open ? Verdict.Human : Verdict.Bot,
            Reason = Cut(reason, 300)!,
        }).ToList();

        if (!await SaveAsync(inbound, events, ct)) return new InboundResult(InboundOutcome.Duplicate);
        feed.Notify([(match.TeamId, connection.UserId)]);
        log.LogInformation("{Kind} from {From} to tracked message {Message} ({By})", kind, author, match.MessageId, match.By);
        return new InboundResult(InboundOutcome.Recorded, eventKind, reason);
    }

    public sealed record Match(Guid MessageId, Guid TeamId, Guid CopyId, Guid? RecipientId, MatchedBy By);

    sealed record CopyRow(Guid Id, Guid? RecipientId, Guid MessageId, Guid TeamId);

    public sealed record Analysis(InboundClassification Classification, Match? Match);

    /// <summary>
    /// Classifies one message. A watch reading a batch classifies each message as soon as it is parsed, while its
    /// parts are still in the processor's cache (done after the whole batch is parsed, classification took about
    /// three times as long), and hands the results to <see cref="AnalyzeManyAsync"/>.
    /// </summary>
    public InboundClassification Classify(MimeMessage message) => classifier.Classify(message);

    /// <summary>Classifies the message and finds the tracked copy it answers (none: null), recording nothing.</summary>
    public async Task<Analysis> AnalyzeAsync(Guid userId, MimeMessage message, string? providerThreadId, CancellationToken ct)
    {
        var classification = classifier.Classify(message);
        return new Analysis(classification, await MatchAsync(userId, message, classification, providerThreadId, ct));
    }

    /// <summary>
    /// <see cref="AnalyzeAsync"/> for a batch (what a watch fetched in one go): the Message-IDs of all of them are looked
    /// up together, in one query per 500 ids, instead of one query or two per message. Each message's candidates are
    /// looked up in two passes with the answer <see cref="CandidateIds"/> gives: first the id each message answers
    /// (In-Reply-To), which settles most replies, and for a message without References the original a report quotes;
    /// then, only for the messages with References that the first pass did not settle, the rest of their ids. A reply's
    /// In-Reply-To, when it is ours, is always its best match, so the answer is the one a single pass would give; the
    /// second pass spares reading, and looking up, the References of most messages (with MimeKit parsing each id, that
    /// was a fifth of the lookup's time; see <see cref="ReferenceIds"/> for how they are read now).
    /// </summary>
    /// <param name="classified">The messages' classifications when the caller made them already (see <see cref="Classify"/>).</param>
    public async Task<IReadOnlyList<Analysis>> AnalyzeManyAsync(Guid userId, IReadOnlyList<(MimeMessage Message, string? ThreadId)> items, CancellationToken ct,
        IReadOnlyList<InboundClassification>? classified = null)
    {
        if (classified is not null && classified.Count != items.Count) throw new ArgumentException("One classification per message.", nameof(classified));
        var classifications = classified ?? [.. items.Select(i => classifier.Classify(i.Message))];
        var matches = new Match?[items.Count];
        var candidates = new List<(int Item, string Id, MatchedBy By)>(items.Count * 2);
        var withReferences = new List<int>();
        for (var n = 0; n < items.Count; n++)
        {
            var message = items[n].Message;
            var inReplyTo = Clean(ReferenceIds.InReplyTo(message));
            if (inReplyTo is not null) candidates.Add((n, inReplyTo, MatchedBy.InReplyTo));
            if (message.Headers.Contains(HeaderId.References)) withReferences.Add(n);
            else if (Original(classifications[n]) is { } original && original != inReplyTo) candidates.Add((n, original, MatchedBy.OriginalMessageId));
        }
        await MatchFirstAsync(userId, candidates, matches, ct);

        candidates.Clear();
        foreach (var n in withReferences)
        {
            if (matches[n] is not null) continue;
            foreach (var (id, by) in CandidateIds(items[n].Message, classifications[n]))
            {
                // In-Reply-To was looked up in the first pass.
                if (by != MatchedBy.InReplyTo) candidates.Add((n, id, by));
            }
        }
        await MatchFirstAsync(userId, candidates, matches, ct);

        var results = new List<Analysis>(items.Count);
        for (var n = 0; n < items.Count; n++)
        {
            var match = matches[n] ?? await ByThreadAsync(userId, items[n].Message, items[n].ThreadId, ct);
            results.Add(new Analysis(classifications[n], match));
        }
        return results;
    }

    /// <summary>
    /// Looks the candidates up and gives each message that has no match yet its first candidate found (candidates are
    /// listed per message in the order they are trusted).
    /// </summary>
    async Task MatchFirstAsync(Guid userId, List<(int Item, string Id, MatchedBy By)> candidates, Match?[] matches, CancellationToken ct)
    {
        if (candidates.Count == 0) return;
        var distinct = new HashSet<string>(candidates.Count, StringComparer.Ordinal);
        foreach (var c in candidates) distinct.Add(c.Id);
        var found = new Dictionary<string, CopyRow>(StringComparer.Ordinal);
        foreach (var chunk in distinct.Chunk(500)) await ByIdsAsync(userId, chunk, found, ct);
        if (found.Count == 0) return;
        foreach (var (item, id, by) in candidates)
        {
            if (matches[item] is null && found.TryGetValue(id, out var hit)) matches[item] = new Match(hit.MessageId, hit.TeamId, hit.Id, hit.RecipientId, by);
        }
    }

    static string? Original(InboundClassification classification) =>
        classification.Kind is InboundKind.Bounce or InboundKind.Complaint or InboundKind.Receipt ? Clean(classification.OriginalMessageId) : null;

    /// <summary>
    /// Ids in the order they are trusted: the message it answers, then its references from the newest (a follow-up's
    /// thread names the latest step last), then the original a bounce, complaint or receipt quotes.
    /// </summary>
    static List<(string Id, MatchedBy By)> CandidateIds(MimeMessage message, InboundClassification classification)
    {
        var ids = new List<(string Id, MatchedBy By)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (Clean(ReferenceIds.InReplyTo(message)) is { } inReplyTo && seen.Add(inReplyTo)) ids.Add((inReplyTo, MatchedBy.InReplyTo));
        foreach (var r in ReferenceIds.NewestFirst(message, MaxReferences))
        {
            if (Clean(r) is { } id && seen.Add(id)) ids.Add((id, MatchedBy.References));
        }
        if (Original(classification) is { } original && seen.Add(original)) ids.Add((original, MatchedBy.OriginalMessageId));
        return ids;
    }

    /// <summary>
    /// Adds to <paramref name="found"/> the user's copies with these Message-IDs (ours or the one the provider kept),
    /// each under the id it was found by. The lookup starts from the copies' indexes and ownership is checked on the
    /// rows found (the owner is kept on the copy, so a found copy costs one row, not two): joined from the user's
    /// messages instead, the planner may walk all of them (a heavy sender has a million). Only ids with the shape of
    /// ours are probed in the index of ours (see <see cref="OurMessageIds"/>): most ids a reply names are not, and each
    /// probe of that index reads a page of it at random.
    /// </summary>
    async Task ByIdsAsync(Guid userId, IReadOnlyList<string> keys, Dictionary<string, CopyRow> found, CancellationToken ct)
    {
        var ours = new List<string>(keys.Count);
        foreach (var key in keys) if (OurMessageIds.MayBeOurs(key)) ours.Add(key);
        if (db.Database.IsSqlite())
        {
            await ByIdsSqliteAsync(userId, ours, keys, found, ct);
            return;
        }
        // One array parameter (= ANY on PostgreSQL) rather than one parameter per id: the SQL stays the same whatever
        // the count, so it is prepared once. Our Message-IDs and the ones providers kept instead are looked up in two
        // halves of one UNION ALL: an OR of the two made every id cost two probes of the big index's size, while the
        // kept ones sit in a small partial index.
        var byOurs = db.Copies.Where(c => EF.Parameter(ours).Contains(c.MessageIdHeader));
        var byKept = db.Copies.Where(c => c.SentMessageIdHeader != null && EF.Parameter(keys).Contains(c.SentMessageIdHeader));
        var rows = await byOurs.Concat(byKept)
            .Select(c => new { c.Id, c.MessageIdHeader, c.SentMessageIdHeader, c.RecipientId, c.TrackedMessageId, c.UserId, c.TeamId })
            .AsNoTracking().ToListAsync(ct);
        foreach (var c in rows)
        {
            if (c.UserId != userId) continue;
            var row = new CopyRow(c.Id, c.RecipientId, c.TrackedMessageId, c.TeamId);
            found[c.MessageIdHeader] = row;
            if (c.SentMessageIdHeader is { } kept) found[kept] = row;
        }
    }

    /// <summary>
    /// The LINQ query of <see cref="ByIdsAsync"/> written out for SQLite and kept prepared on the lookup connection.
    /// Through EF Core each batch's lookup cost about 0.6 ms more than the statement itself (building the query, the
    /// parameter and the rows), more than the probes themselves: a watch reading a mailbox spent more time there than
    /// in SQLite. Each list of ids is one JSON array read with json_each, and each id probes the index once; the
    /// <c>IN (SELECT …)</c> that EF Core writes first builds a temporary index of the ids, which took a sixth longer
    /// over a batch (bench/replies). The owner is compared in the statement (<c>+</c> keeps the planner from choosing an
    /// index of the owner's copies for it). A row is two columns: which id found it (its place in its list, times two,
    /// plus one for the list of all ids), so no string is read back; and the copy's four ids as one blob of 16-byte
    /// values (see <see cref="ReadRow"/>): each column read is a call into SQLite, and reading the ids one by one was
    /// a quarter of the lookup's own time.
    /// </summary>
    const string SqliteLookup = """
        SELECT "k"."key" * 2, CAST("c"."Id" || "c"."TrackedMessageId" || "c"."TeamId" || ifnull("c"."RecipientId", x'') AS BLOB)
        FROM json_each($ours) AS "k" CROSS JOIN "Copies" AS "c" ON "c"."MessageIdHeader" = "k"."value" AND +"c"."UserId" = $user
        UNION ALL
        SELECT "k"."key" * 2 + 1, CAST("c"."Id" || "c"."TrackedMessageId" || "c"."TeamId" || ifnull("c"."RecipientId", x'') AS BLOB)
        FROM json_each($keys) AS "k" CROSS JOIN "Copies" AS "c" ON "c"."SentMessageIdHeader" = "k"."value" AND "c"."SentMessageIdHeader" IS NOT NULL
            AND +"c"."UserId" = $user
        """;

    SqliteCommand? lookup;

    async Task ByIdsSqliteAsync(Guid userId, List<string> ours, IReadOnlyList<string> keys, Dictionary<string, CopyRow> found, CancellationToken ct)
    {
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            var connection = (SqliteConnection)db.Database.GetDbConnection();
            await WidenPageCacheAsync(connection, ct);
            if (lookup is null || !ReferenceEquals(lookup.Connection, connection))
            {
                lookup = connection.CreateCommand();
                lookup.CommandText = SqliteLookup;
                lookup.Parameters.Add("$ours", SqliteType.Text);
                lookup.Parameters.Add("$keys", SqliteType.Text);
                lookup.Parameters.Add("$user", SqliteType.Blob);
            }
            // A command on a connection inside a transaction must name it (Microsoft.Data.Sqlite checks).
            lookup.Transaction = (SqliteTransaction?)db.Database.CurrentTransaction?.GetDbTransaction();
            lookup.Parameters[0].Value = JsonSerializer.Serialize(ours, KeysJson.Default.IReadOnlyCollectionString);
            lookup.Parameters[1].Value = JsonSerializer.Serialize(keys, KeysJson.Default.IReadOnlyCollectionString);
            // As the copies store it (EF Core's GuidToBytesConverter: Guid.ToByteArray).
            lookup.Parameters[2].Value = userId.ToByteArray();
            await using var reader = await lookup.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                var tag = reader.GetInt64(0);
                var list = (tag & 1) == 0 ? (IReadOnlyList<string>)ours : keys;
                found[list[(int)(tag >> 1)]] = ReadRow(reader.GetFieldValue<byte[]>(1));
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>A copy's ids as <see cref="SqliteLookup"/> concatenates them: Id, TrackedMessageId, TeamId, then
    /// RecipientId when there is one (each as EF Core stores a Guid: <see cref="Guid.ToByteArray()"/>).</summary>
    static CopyRow ReadRow(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length is not (48 or 64)) throw new InvalidOperationException($"A copy's ids read back as {bytes.Length} bytes instead of 48 or 64.");
        return new CopyRow(new Guid(bytes[..16]), bytes.Length == 64 ? new Guid(bytes[48..64]) : null, new Guid(bytes[16..32]), new Guid(bytes[32..48]));
    }

    /// <summary>SQLite's page cache for lookups, in KiB (its default is 2 MiB).</summary>
    const int LookupCacheKib = 65_536;

    SqliteConnection? widened;

    /// <summary>
    /// Message-IDs are looked up at random in an index that holds every copy ever sent (tens of MB for a million): with
    /// SQLite's default 2 MiB page cache nearly every probe reads its pages again from the file. The connection a
    /// watch uses for its lookups gets room for the index's inner pages (the setting stays with the connection, which
    /// the pool keeps; the cache grows only with the pages actually read). PostgreSQL has its shared buffers.
    /// </summary>
    async Task WidenPageCacheAsync(SqliteConnection connection, CancellationToken ct)
    {
        if (ReferenceEquals(connection, widened)) return;
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = $"PRAGMA cache_size=-{LookupCacheKib}";
        await cmd.ExecuteNonQueryAsync(ct);
        widened = connection;
    }

    /// <summary>No Message-ID matched: the provider's thread id, then Outlook's Thread-Index.</summary>
    async Task<Match?> ByThreadAsync(Guid userId, MimeMessage message, string? providerThreadId, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(providerThreadId))
        {
            var hit = await Latest(db.Copies.Where(c => c.ProviderThreadId == providerThreadId), userId, MatchedBy.ThreadId, ct);
            if (hit is not null) return hit;
        }
        if (ThreadIndex.Conversation(message.Headers["Thread-Index"]) is { } conversation)
        {
            return await Latest(db.Copies.Where(c => c.ThreadIndex == conversation), userId, MatchedBy.ThreadIndex, ct);
        }
        return null;
    }

    /// <summary>The user's most recent copy among these (found through the copies' own index, owner checked after).</summary>
    static async Task<Match?> Latest(IQueryable<MessageCopy> copies, Guid userId, MatchedBy by, CancellationToken ct)
    {
        var rows = await copies
            .Select(c => new { c.Id, c.RecipientId, MessageId = c.TrackedMessageId, c.TrackedMessage!.UserId, c.TrackedMessage.TeamId, c.TrackedMessage.CreatedAt })
            .Take(200).AsNoTracking().ToListAsync(ct);
        var hit = rows.Where(r => r.UserId == userId).OrderByDescending(r => r.CreatedAt).FirstOrDefault();
        return hit is null ? null : new Match(hit.MessageId, hit.TeamId, hit.Id, hit.RecipientId, by);
    }

    async Task<Match?> MatchAsync(Guid userId, MimeMessage message, InboundClassification classification, string? providerThreadId, CancellationToken ct)
    {
        var ids = CandidateIds(message, classification);
        if (ids.Count > 0)
        {
            // One query for all of them (a watch reading many messages uses AnalyzeManyAsync: one per batch).
            var found = new Dictionary<string, CopyRow>(StringComparer.Ordinal);
            await ByIdsAsync(userId, [.. ids.Select(x => x.Id)], found, ct);
            foreach (var (id, by) in ids)
            {
                if (found.TryGetValue(id, out var hit)) return new Match(hit.MessageId, hit.TeamId, hit.Id, hit.RecipientId, by);
            }
        }
        return await ByThreadAsync(userId, message, providerThreadId, ct);
    }

    /// <summary>Inserts the inbound message and its events in one transaction; false when it was recorded before.</summary>
    async Task<bool> SaveAsync(InboundMessage inbound, List<TrackingEvent> events, CancellationToken ct)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await EventRecorder.LockEventOrderAsync(db.Database, ct);
            db.InboundMessages.Add(inbound);
            db.Events.AddRange(events);
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException ex) when (ex.InnerException is DbException)
            {
                // Another watcher (or an earlier run that crashed before its checkpoint) recorded it first.
                await tx.RollbackAsync(ct);
                Forget(inbound, events);
                if (await db.InboundMessages.AnyAsync(i => (i.ConnectionId == inbound.ConnectionId && i.ProviderId == inbound.ProviderId)
                        || (inbound.InternetMessageId != null && i.UserId == inbound.UserId && i.InternetMessageId == inbound.InternetMessageId), ct))
                {
                    return false;
                }
                throw;
            }
            await FeedNotifier.NotifyOnCommitAsync(db.Database, [(inbound.TeamId, inbound.UserId)], ct);
            await tx.CommitAsync(ct);
            Forget(inbound, events);
            return true;
        });
    }

    /// <summary>
    /// Stops tracking what this call added. Only that: the context is shared with the caller's scope (a watch keeps
    /// its checkpoint tracked in it), so clearing the whole tracker would lose the caller's changes.
    /// </summary>
    void Forget(InboundMessage inbound, List<TrackingEvent> events)
    {
        db.Entry(inbound).State = EntityState.Detached;
        foreach (var e in events) db.Entry(e).State = EntityState.Detached;
    }

    static string Reason(EventKind kind, ReplierRole role, string author, InboundClassification c)
    {
        var who = role switch
        {
            ReplierRole.New => $"{author} (not a recipient: forwarded or added)",
            ReplierRole.Cc => $"{author} (cc)",
            ReplierRole.Bcc => $"{author} (bcc)",
            _ => author,
        };
        return kind switch
        {
            EventKind.Reply => $"reply from {who}",
            EventKind.AutoReply when c.Departed => $"auto-reply from {who}, no longer there: {c.Reason}",
            EventKind.AutoReply => c.ReturnDate is { } back ? $"auto-reply from {who}, back {back:yyyy-MM-dd}: {c.Reason}" : $"auto-reply from {who}: {c.Reason}",
            EventKind.Bounce => $"bounce{(c.Status is null ? "" : " " + c.Status)}{(c.Permanent == true ? " (permanent)" : c.Permanent == false ? " (temporary)" : "")}: {c.Reason}",
            EventKind.Complaint => $"spam complaint: {c.Reason}",
            EventKind.Receipt => $"receipt from {who}: {c.Reason}",
            _ => c.Reason,
        };
    }

    /// <summary>The author's lower-case address (From, or Sender when From has none).</summary>
    public static string? Author(MimeMessage message)
    {
        var box = message.From.Mailboxes.FirstOrDefault() ?? message.Sender;
        return AccountService.NormalizeAddress(box?.Address);
    }

    /// <summary>
    /// The first lines the author wrote, for the timeline, Salesforce and webhooks: the text body (or, for mail sent as
    /// HTML only, its text), cut where the quoted original starts as the classifier finds it (the attribution lines of
    /// the common clients in the seven languages, Outlook's header block, "&gt;" lines), without a signature after
    /// "-- ". A reply written below the quote keeps its own lines.
    /// </summary>
    internal static string? Excerpt(MimeMessage message)
    {
        string? text;
        try
        {
            text = message.TextBody;
            if (string.IsNullOrWhiteSpace(text) && message.HtmlBody is { Length: > 0 } html)
                text = MessageView.HtmlToText(html, ExcerptSourceChars);
        }
        catch (Exception)
        {
            return null;
        }
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (text.Length > ExcerptSourceChars) text = TextClip.Prefix(text, ExcerptSourceChars);
        var (top, _) = AutoReplyRules.SplitQuoted(text);
        var excerpt = OwnLines(top);
        // Nothing above the quote: the answer is below it (or between its parts); keep what is not quoted, without the
        // attribution line ("On … wrote:") the quote began with.
        return excerpt.Length > 0 ? excerpt : OwnLines(text, dropAttributions: true);
    }

    /// <summary>How much of a body the excerpt is looked for in: it keeps 500 characters of what the author wrote first.</summary>
    const int ExcerptSourceChars = 16_000;

    static string OwnLines(string text, bool dropAttributions = false) => string.Join(' ', text.Split('\n')
        .TakeWhile(l => l.TrimEnd('\r') != "-- ")
        .Select(l => l.Trim())
        .Where(l => l.Length > 0 && !l.StartsWith('>') && !(dropAttributions && AutoReplyRules.SplitQuoted(l) is { Quoted: true, Top.Length: 0 })));

    public static string? Clean(string? messageId)
    {
        if (string.IsNullOrWhiteSpace(messageId)) return null;
        var id = messageId.Trim().Trim('<', '>').Trim();
        // No Message-ID holds a control character; a NUL, as a query parameter, fails the lookup on PostgreSQL.
        return id.Length is 0 or > 500 || PlainText.HasControl(id) ? null : id;
    }

    /// <summary>
    /// One line (<see cref="PlainText.OneLine"/>) of at most <paramref name="n"/> UTF-16 units, an ellipsis standing for
    /// the rest; never half a character: an emoji cut in two is not text PostgreSQL takes, nor is a NUL (which anyone
    /// can put in a subject as =?utf-8?b?AA==?=, or in a body), and the message would fail to be recorded on every round.
    /// </summary>
    static string? Cut(string? s, int n) => TextClip.ShortenOrNull(PlainText.OneLineOrNull(s), n);
}

[JsonSerializable(typeof(IReadOnlyCollection<string>))]
sealed partial class KeysJson : JsonSerializerContext;
