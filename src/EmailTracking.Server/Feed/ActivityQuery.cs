using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Feed;

/// <summary>One line of activity as the feed, the timeline and the API show it.</summary>
public sealed record ActivityItem
{
    public long Id { get; init; }
    public EventKind Kind { get; init; }
    public Verdict Verdict { get; init; }
    public string Reason { get; init; } = "";
    public DateTimeOffset OccurredAt { get; init; }
    /// <summary>The message; null for a document read through a share link outside any message (<see cref="ShareLink"/>).</summary>
    public Guid? MessageId { get; init; }
    /// <summary>The message's subject; empty for a share link's read.</summary>
    public string Subject { get; init; } = "";
    /// <summary>
    /// The message's place in the web app's list: when it was sent, or registered while not sent. Null for a share
    /// link's read, which has no place in the list of messages.
    /// </summary>
    public DateTimeOffset? ListedAt { get; init; }
    public Guid? RecipientId { get; init; }
    public string? Recipient { get; init; }
    public string? LinkUrl { get; init; }
    public bool Honeypot { get; init; }
    public string? FromAddress { get; init; }
    public string? Ip { get; init; }
    public string? UserAgent { get; init; }
    /// <summary>For document events: the document (its page in the web app), its name, the page reached and its length.</summary>
    public Guid? ContentId { get; init; }
    public string? Document { get; init; }
    public int? Page { get; init; }
    public int? PageCount { get; init; }
    /// <summary>For a share link that asks for it: the address its reader gave, and whether a mailed code proved it.</summary>
    public string? Reader { get; init; }
    public bool ReaderVerified { get; init; }

    public bool IsHuman => Verdict == Verdict.Human;

    /// <summary>A document read through a share link that was never part of a registered message: no message, no recipient.</summary>
    public bool ShareLink => MessageId is null && ContentId is not null;

    /// <summary>
    /// Shown without asking for machines: what people did, and what robots answered (auto-replies, bounces,
    /// complaints, receipts: "deleted without being read"), which the sender needs to know. Machine opens and clicks,
    /// and the sender's own (verdict self, counted apart from the machines'), wait for "show".
    /// </summary>
    public bool ShownByDefault => IsHuman || Kind is EventKind.AutoReply or EventKind.Bounce or EventKind.Complaint or EventKind.Receipt;

    /// <summary>The database form of <see cref="ShownByDefault"/>.</summary>
    public static readonly System.Linq.Expressions.Expression<Func<TrackingEvent, bool>> ShownByDefaultFilter =
        e => e.Verdict == Verdict.Human || e.Kind == EventKind.AutoReply || e.Kind == EventKind.Bounce || e.Kind == EventKind.Complaint
             || e.Kind == EventKind.Receipt;

    /// <summary>The events <see cref="ShownByDefaultFilter"/> leaves out: machine opens, clicks and document reads, and the
    /// sender's own (verdict self), counted as hidden (the sender's own apart: they are no machine's).</summary>
    public static readonly System.Linq.Expressions.Expression<Func<TrackingEvent, bool>> HiddenByDefaultFilter =
        e => e.Verdict != Verdict.Human && (e.Kind == EventKind.Open || e.Kind == EventKind.Click ||
                                            e.Kind == EventKind.DocumentView || e.Kind == EventKind.DocumentPage || e.Kind == EventKind.Download ||
                                            e.Kind == EventKind.DocumentLink);
}

/// <summary>
/// A person's event taken back (the feed's <c>verdict</c> event): it is now <see cref="Verdict"/>. With the
/// recipient's latest remaining opens and clicks, so a screen that showed the event can put its counts right.
/// </summary>
public sealed record VerdictItem
{
    /// <summary>The change's own id (the second half of the feed's cursor).</summary>
    public long Change { get; init; }
    /// <summary>The event's id, as its <c>activity</c> event had it.</summary>
    public long Id { get; init; }
    public EventKind Kind { get; init; }
    public Verdict From { get; init; }
    public Verdict Verdict { get; init; }
    public string Reason { get; init; } = "";
    public DateTimeOffset ChangedAt { get; init; }
    public Guid MessageId { get; init; }
    public Guid? RecipientId { get; init; }
    /// <summary>The first and latest open and the latest click of this recipient (of the message, for one shared copy) that still count.</summary>
    public DateTimeOffset? FirstOpenAt { get; init; }
    public DateTimeOffset? LastOpenAt { get; init; }
    public DateTimeOffset? LastClickAt { get; init; }
    /// <summary>The latest document view, page reached, download or link followed that still counts (a later one than
    /// the opens and clicks keeps "read a document" as the last activity).</summary>
    public DateTimeOffset? LastDocumentAt { get; init; }
}

public enum FeedScope { Mine, Team }

public static class ActivityQuery
{
    /// <summary>Events the user may see: their own messages, or (team admins asking for it) the team's.</summary>
    public static IQueryable<TrackingEvent> Visible(AppDbContext db, CurrentUser user, FeedScope scope) =>
        scope == FeedScope.Team && user.IsAdmin
            ? db.Events.Where(e => e.TeamId == user.TeamId)
            : db.Events.Where(e => e.UserId == user.Id && e.TeamId == user.TeamId);

    /// <summary>Verdict changes of the events <see cref="Visible"/> returns.</summary>
    public static IQueryable<VerdictChange> VisibleChanges(AppDbContext db, CurrentUser user, FeedScope scope) =>
        scope == FeedScope.Team && user.IsAdmin
            ? db.VerdictChanges.Where(c => c.TeamId == user.TeamId)
            : db.VerdictChanges.Where(c => c.UserId == user.Id && c.TeamId == user.TeamId);

    public static async Task<long> LatestChangeIdAsync(AppDbContext db, CurrentUser user, FeedScope scope, CancellationToken ct) =>
        await VisibleChanges(db, user, scope).Select(c => (long?)c.Id).MaxAsync(ct) ?? 0;

    /// <summary>
    /// The changes as the feed sends them, each with what still counts for its recipient among the events up to
    /// <paramref name="upToEventId"/> (what the reader of the feed has been sent).
    /// </summary>
    public static async Task<List<VerdictItem>> ProjectChangesAsync(AppDbContext db, IReadOnlyList<VerdictChange> changes, long upToEventId,
        CancellationToken ct)
    {
        // One query for the whole page of changes, however many recipients it touches (a scanner's burst across a
        // campaign, a proxy's repeats, the sender's views): per recipient it made a catch-up one query per change.
        // The human events of the changes' recipients, and of every recipient of a message whose change names none
        // (one shared copy), by recipient and kind; each change's recipient is then put together from these rows.
        if (changes.Count == 0) return [];
        var messages = changes.Select(c => c.TrackedMessageId).Distinct().ToList();
        var wholeMessages = changes.Where(c => c.RecipientId is null).Select(c => c.TrackedMessageId).Distinct().ToList();
        var recipients = changes.Where(c => c.RecipientId is not null).Select(c => c.RecipientId).Distinct().ToList();
        var rows = await db.Events
            .Where(e => e.TrackedMessageId != null && messages.Contains(e.TrackedMessageId.Value) && e.Id <= upToEventId && e.Verdict == Verdict.Human
                        && (e.Kind == EventKind.Open || e.Kind == EventKind.Click || e.Kind == EventKind.DocumentView
                            || e.Kind == EventKind.DocumentPage || e.Kind == EventKind.Download || e.Kind == EventKind.DocumentLink)
                        && (wholeMessages.Contains(e.TrackedMessageId.Value) || recipients.Contains(e.RecipientId)))
            .GroupBy(e => new { TrackedMessageId = e.TrackedMessageId!.Value, e.RecipientId, e.Kind })
            .Select(g => new { g.Key.TrackedMessageId, g.Key.RecipientId, g.Key.Kind, First = g.Min(e => e.OccurredAt), Last = g.Max(e => e.OccurredAt) })
            .ToListAsync(ct);
        var byMessage = rows.ToLookup(x => x.TrackedMessageId);
        var latest = new Dictionary<(Guid, Guid?), (DateTimeOffset? FirstOpen, DateTimeOffset? Open, DateTimeOffset? Click, DateTimeOffset? Document)>();
        foreach (var (message, recipient) in changes.Select(c => (c.TrackedMessageId, c.RecipientId)).Distinct())
        {
            var mine = byMessage[message].Where(x => recipient is null || x.RecipientId == recipient).ToList();
            var opens = mine.Where(x => x.Kind == EventKind.Open).ToList();
            latest[(message, recipient)] = (
                opens.Select(x => (DateTimeOffset?)x.First).Min(),
                opens.Select(x => (DateTimeOffset?)x.Last).Max(),
                mine.Where(x => x.Kind == EventKind.Click).Select(x => (DateTimeOffset?)x.Last).Max(),
                mine.Where(x => x.Kind is not (EventKind.Open or EventKind.Click)).Select(x => (DateTimeOffset?)x.Last).Max());
        }
        return changes.Select(c =>
        {
            var (firstOpen, lastOpen, lastClick, lastDocument) = latest[(c.TrackedMessageId, c.RecipientId)];
            return new VerdictItem
            {
                Change = c.Id,
                Id = c.EventId,
                Kind = c.Kind,
                From = c.From,
                Verdict = c.To,
                Reason = c.Reason,
                ChangedAt = c.ChangedAt,
                MessageId = c.TrackedMessageId,
                RecipientId = c.RecipientId,
                FirstOpenAt = firstOpen,
                LastOpenAt = lastOpen,
                LastClickAt = lastClick,
                LastDocumentAt = lastDocument,
            };
        }).ToList();
    }

    // Member initialisation (not a constructor) so that EF can still order and page after the projection. A left join:
    // a document read through a share link outside any message has no message, and is shown all the same. An event whose
    // message is gone (its owner's account was deleted) stays out, as the inner join it replaces left it out.
    public static IQueryable<ActivityItem> Project(AppDbContext db, IQueryable<TrackingEvent> events) =>
        from e in events
        join message in db.Messages on e.TrackedMessageId equals message.Id into messages
        from m in messages.DefaultIfEmpty()
        where e.TrackedMessageId == null || m != null
        select new ActivityItem
        {
            Id = e.Id,
            Kind = e.Kind,
            Verdict = e.Verdict,
            Reason = e.Reason,
            OccurredAt = e.OccurredAt,
            MessageId = e.TrackedMessageId,
            Subject = m == null ? "" : m.Subject,
            ListedAt = m == null ? null : m.SentAt ?? m.CreatedAt,
            RecipientId = e.RecipientId,
            Recipient = db.Recipients.Where(r => r.Id == e.RecipientId).Select(r => r.Address).FirstOrDefault(),
            LinkUrl = e.Url ?? db.Links.Where(l => l.Id == e.LinkId).Select(l => l.Url).FirstOrDefault(),
            Honeypot = db.Links.Any(l => l.Id == e.LinkId && l.IsHoneypot),
            FromAddress = e.FromAddress,
            Ip = e.Ip,
            UserAgent = e.UserAgent,
            ContentId = e.ContentId,
            Document = db.Contents.Where(c => c.Id == e.ContentId).Select(c => c.Name).FirstOrDefault(),
            Page = e.Page,
            PageCount = db.Contents.Where(c => c.Id == e.ContentId).Select(c => (int?)c.PageCount).FirstOrDefault(),
            Reader = e.ReaderEmail,
            ReaderVerified = e.ReaderVerified,
        };

    public static async Task<long> LatestIdAsync(AppDbContext db, CurrentUser user, FeedScope scope, CancellationToken ct) =>
        await Visible(db, user, scope).Select(e => (long?)e.Id).MaxAsync(ct) ?? 0;
}
