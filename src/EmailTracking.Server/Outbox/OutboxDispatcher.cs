using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Outbox;

/// <summary>Which targets of one kind want an event type for a team (the team's enabled webhooks subscribed to it, its Salesforce org).</summary>
public interface IOutboxSubscribers
{
    string Kind { get; }
    Task<IReadOnlyList<Guid>> TargetsAsync(Guid teamId, string eventType, CancellationToken ct);
}

/// <summary>
/// Turns loggable events into deliveries, one per subscribed target. Two sources: the outbox entries written with a
/// message's send (<see cref="OutboxEvent"/>), and the events table, followed by id from a stored cursor — each
/// tracking event was committed in the same transaction as itself, and ids commit in order (the live feed relies on
/// the same), so none is skipped. Opens, clicks and document views are taken once settled (see
/// <see cref="OutboxOptions.Settle"/>); machines and the sender's own views are never sent; of a recipient's opens only
/// the first by a person is; documents read through a share link outside any message are not sent. The deliveries and the cursor move in one transaction, and a delivery is unique per target
/// and idempotency key, so a second dispatcher racing this one changes nothing.
/// </summary>
public sealed class OutboxDispatcher(AppDbContext db, IEnumerable<IOutboxSubscribers> subscribers, TimeProvider clock, IOptions<OutboxOptions> options,
    ILogger<OutboxDispatcher> log)
{
    public const string EventsCursor = "events";
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    static readonly EventKind[] Loggable = [EventKind.Open, EventKind.Click, EventKind.DocumentView, EventKind.DocumentLink, EventKind.Reply, EventKind.AutoReply, EventKind.Bounce];

    /// <summary>
    /// One pass over both sources: the deliveries made, and whether a source gave a full batch, all of it taken (more
    /// may be waiting, and the caller goes again at once rather than after its poll interval).
    /// </summary>
    public async Task<(int Made, bool Full)> DispatchAsync(CancellationToken ct)
    {
        var (outbox, outboxFull) = await DispatchOutboxEventsAsync(ct);
        var (events, eventsFull) = await DispatchTrackingEventsAsync(ct);
        return (outbox + events, outboxFull || eventsFull);
    }

    async Task<(int Made, bool Full)> DispatchOutboxEventsAsync(CancellationToken ct)
    {
        var o = options.Value;
        var made = 0;
        var pending = await db.OutboxEvents.Where(e => e.DispatchedAt == null).OrderBy(e => e.Id).Take(o.Batch).ToListAsync(ct);
        foreach (var e in pending)
        {
            var payload = await PayloadAsync(e.Type, e.TrackedMessageId, e.OccurredAt, null, ct);
            if (payload is not null) made += await FanOutAsync(e.TeamId, "outbox", e.Id, payload, ct);
            e.DispatchedAt = clock.GetUtcNow();
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException ex)
            {
                // Another dispatcher made these deliveries first.
                log.LogDebug(ex, "Outbox entry {Id} was dispatched by another instance", e.Id);
                db.ChangeTracker.Clear();
                return (made, false);
            }
        }
        return (made, pending.Count == o.Batch);
    }

    async Task<(int Made, bool Full)> DispatchTrackingEventsAsync(CancellationToken ct)
    {
        var o = options.Value;
        var cursor = await db.OutboxCursors.FirstOrDefaultAsync(c => c.Name == EventsCursor, ct);
        if (cursor is null)
        {
            // A new installation (or one upgraded to the outbox) starts from now: history is not replayed to targets.
            var last = await db.Events.MaxAsync(e => (long?)e.Id, ct) ?? 0;
            db.OutboxCursors.Add(new OutboxCursor { Name = EventsCursor, Value = last });
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException)
            {
                db.ChangeTracker.Clear();
            }
            return (0, false);
        }
        var settled = clock.GetUtcNow() - o.Settle;
        // Most events go nowhere (no target wants them): they are passed over in large steps, with one question per
        // team and type, and only an event some target wants costs the queries that decide and describe it.
        var events = await db.Events.AsNoTracking().Where(e => e.Id > cursor.Value).OrderBy(e => e.Id).Take(o.Batch * 10).ToListAsync(ct);
        var wanted = new Dictionary<(Guid, string), bool>();
        var made = 0;
        foreach (var e in events)
        {
            // In order: the first event that has not settled yet holds the rest back.
            if (e.OccurredAt > settled) break;
            cursor.Value = e.Id;
            // A document read through a share link outside any message goes to no target: it names no message and no
            // recipient, which every payload has and which Salesforce logs a Task on. The cursor passes it like any
            // event no target wants; the owner sees it in the live feed and on the document's page.
            if (e.TrackedMessageId is not { } messageId) continue;
            if (Candidate(e) is not { } candidate) continue;
            if (!wanted.TryGetValue((e.TeamId, candidate), out var any))
            {
                any = false;
                foreach (var s in subscribers) any |= (await s.TargetsAsync(e.TeamId, candidate, ct)).Count > 0;
                wanted[(e.TeamId, candidate)] = any;
            }
            if (!any || await TypeOfAsync(e, ct) is not { } type) continue;
            var payload = await PayloadAsync(type, messageId, e.OccurredAt, e, ct);
            if (payload is not null) made += await FanOutAsync(e.TeamId, "event", e.Id, payload, ct);
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex)
        {
            log.LogDebug(ex, "Events were dispatched by another instance");
            db.ChangeTracker.Clear();
            return (0, false);
        }
        // Full when the whole step was taken: one that stopped at an event not yet settled waits for it to settle.
        return (made, events.Count == o.Batch * 10 && cursor.Value == events[^1].Id);
    }

    /// <summary>The type an event would go out as, from the event alone (whether an open is the first is decided later).</summary>
    static string? Candidate(TrackingEvent e) => e.Kind switch
    {
        EventKind.Open when e.Verdict == Verdict.Human => OutboxEventTypes.MessageOpened,
        EventKind.Click when e.Verdict == Verdict.Human => OutboxEventTypes.LinkClicked,
        EventKind.DocumentView when e.Verdict == Verdict.Human => OutboxEventTypes.DocumentViewed,
        EventKind.DocumentLink when e.Verdict == Verdict.Human => OutboxEventTypes.DocumentLinkFollowed,
        EventKind.Reply => OutboxEventTypes.ReplyReceived,
        EventKind.AutoReply => OutboxEventTypes.AutoReplyReceived,
        EventKind.Bounce => OutboxEventTypes.BounceReceived,
        _ => null,
    };

    /// <summary>The outbox type of a tracking event, or null when it is not sent anywhere.</summary>
    async Task<string?> TypeOfAsync(TrackingEvent e, CancellationToken ct)
    {
        if (!Loggable.Contains(e.Kind)) return null;
        switch (e.Kind)
        {
            case EventKind.Open:
                if (e.Verdict != Verdict.Human) return null;
                var earlier = await db.Events.AnyAsync(x => x.TrackedMessageId == e.TrackedMessageId && x.RecipientId == e.RecipientId && x.Kind == EventKind.Open
                                                            && x.Verdict == Verdict.Human && x.Id < e.Id, ct);
                return earlier ? null : OutboxEventTypes.MessageOpened;
            case EventKind.Click:
                return e.Verdict == Verdict.Human ? OutboxEventTypes.LinkClicked : null;
            case EventKind.DocumentView:
                return e.Verdict == Verdict.Human ? OutboxEventTypes.DocumentViewed : null;
            case EventKind.DocumentLink:
                return e.Verdict == Verdict.Human ? OutboxEventTypes.DocumentLinkFollowed : null;
            case EventKind.Reply:
                return OutboxEventTypes.ReplyReceived;
            case EventKind.AutoReply:
                return OutboxEventTypes.AutoReplyReceived;
            case EventKind.Bounce:
                return OutboxEventTypes.BounceReceived;
            default:
                return null;
        }
    }

    async Task<OutboxPayload?> PayloadAsync(string type, Guid messageId, DateTimeOffset at, TrackingEvent? e, CancellationToken ct)
    {
        var m = await db.Messages.AsNoTracking().Include(x => x.Recipients).FirstOrDefaultAsync(x => x.Id == messageId, ct);
        if (m is null) return null;
        string? recipient = e?.RecipientId is { } rid ? m.Recipients.FirstOrDefault(r => r.Id == rid)?.Address : null;
        if (recipient is null && m.Recipients.Count(r => r.Role != RecipientRole.Bcc) == 1) recipient = m.Recipients.First(r => r.Role != RecipientRole.Bcc).Address;
        string? link = e?.LinkId is { } lid ? await db.Links.Where(l => l.Id == lid).Select(l => l.Url).FirstOrDefaultAsync(ct)
            : e?.Kind == EventKind.DocumentLink ? e.Url : null;
        string? document = e?.ContentId is { } cid ? await db.Contents.Where(c => c.Id == cid).Select(c => c.Name).FirstOrDefaultAsync(ct) : null;
        string? excerpt = null;
        if (e is { Kind: EventKind.Reply or EventKind.AutoReply or EventKind.Bounce })
        {
            excerpt = await db.InboundMessages.Where(i => i.TrackedMessageId == m.Id && i.Kind == e.Kind && i.FromAddress == e.FromAddress)
                .OrderByDescending(i => i.Id).Select(i => i.Excerpt).FirstOrDefaultAsync(ct);
        }
        var counts = await db.Events.Where(x => x.TrackedMessageId == m.Id && x.Verdict == Verdict.Human && (e == null || x.Id <= e.Id))
            .GroupBy(x => x.Kind).Select(g => new { g.Key, N = g.Count() }).ToListAsync(ct);
        int N(EventKind k) => counts.FirstOrDefault(c => c.Key == k)?.N ?? 0;
        var summary = new OutboxSummary(N(EventKind.Open), N(EventKind.Click), N(EventKind.DocumentPage), N(EventKind.Reply) > 0);
        return new OutboxPayload(type, at, m.TeamId, m.UserId, m.FromAddress, m.Id, m.Subject, m.SentAt, recipient,
            [.. m.Recipients.Where(r => r.Role != RecipientRole.Bcc).Select(r => r.Address)], link, document, e?.FromAddress, excerpt,
            e is null ? "human" : JsonNamingPolicy.KebabCaseLower.ConvertName(e.Verdict.ToString()), e?.Reason, summary,
            e?.Kind == EventKind.DocumentLink ? e.Page : null);
    }

    async Task<int> FanOutAsync(Guid teamId, string source, long id, OutboxPayload payload, CancellationToken ct)
    {
        var made = 0;
        var json = JsonSerializer.Serialize(payload, Json);
        var now = clock.GetUtcNow();
        foreach (var s in subscribers)
        {
            foreach (var target in await s.TargetsAsync(teamId, payload.Type, ct))
            {
                // An event gone over again (a cursor another dispatcher saved behind this one's) already has its
                // delivery: adding it again would fail the whole batch, on every pass, and hold up every event after it.
                var key = Key(source, id, s.Kind, target);
                if (await db.OutboxDeliveries.AnyAsync(d => d.TargetKind == s.Kind && d.TargetId == target && d.IdempotencyKey == key, ct)) continue;
                db.OutboxDeliveries.Add(new OutboxDelivery
                {
                    TeamId = teamId, TargetKind = s.Kind, TargetId = target, EventType = payload.Type, IdempotencyKey = key,
                    Payload = json, State = DeliveryState.Pending, CreatedAt = now, NextAttemptAt = now,
                });
                made++;
            }
        }
        return made;
    }

    /// <summary>Opaque and stable: the same event to the same target always has the same key.</summary>
    public static string Key(string source, long id, string kind, Guid target) =>
        "evt_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{source}:{id}:{kind}:{target:N}")))[..32];

    public static OutboxPayload? Read(string json) => JsonSerializer.Deserialize<OutboxPayload>(json, Json);
}
