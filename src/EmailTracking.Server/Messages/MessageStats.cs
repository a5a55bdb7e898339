using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Messages;

/// <param name="DocumentViews">Times a tracked document link was opened, by people.</param>
/// <param name="PagesRead">Pages of tracked documents reached, by people (each page once per visit).</param>
/// <param name="Downloads">Downloads of tracked documents, by people.</param>
/// <param name="LastDocumentAt">The latest of people's document views, pages reached, downloads and links followed.</param>
/// <param name="MachineOpens">Opens by machines (image proxies' prefetches, scanners, bots); the sender's own are not among them.</param>
/// <param name="MachineClicks">Clicks by machines (link scanners, bots); the sender's own are not among them.</param>
/// <param name="MachineDocumentEvents">The same kinds of event, by machines (link previewers, scanners).</param>
/// <param name="SelfOpens">The sender's own opens (verdict self: a device they signed in with, their Gmail view of the
/// sent mail): neither a person's nor a machine's, counted nowhere else.</param>
/// <param name="SelfClicks">The sender's own clicks, as <paramref name="SelfOpens"/>.</param>
/// <param name="SelfDocumentEvents">The sender's own document views, pages, downloads and links followed.</param>
public sealed record Counts(int Opens, int Clicks, int MachineOpens, int MachineClicks, bool Replied,
    DateTimeOffset? FirstOpenAt, DateTimeOffset? LastOpenAt, DateTimeOffset? LastClickAt, bool AutoReplied = false, bool Bounced = false,
    int DocumentViews = 0, int PagesRead = 0, int Downloads = 0, DateTimeOffset? LastDocumentAt = null, int MachineDocumentEvents = 0,
    int SelfOpens = 0, int SelfClicks = 0, int SelfDocumentEvents = 0)
{
    public static readonly Counts None = new(0, 0, 0, 0, false, null, null, null);
    /// <summary>Machines' opens, clicks and document events: what "N machine events hidden" counts. Not the sender's own.</summary>
    public int MachineEvents => MachineOpens + MachineClicks + MachineDocumentEvents;
    /// <summary>The sender's own opens, clicks and document events: what "N of your own views hidden" counts.</summary>
    public int OwnViews => SelfOpens + SelfClicks + SelfDocumentEvents;
    /// <summary>Whether a person did anything with a tracked document of the message.</summary>
    public bool ReadDocuments => DocumentViews + PagesRead + Downloads > 0;
    /// <summary>A person answered, yet no open was seen: their mail client does not load images.</summary>
    public bool RepliedNeverOpened => Replied && Opens == 0;
}

/// <summary>Why a recipient's copy was not sent (the mail server's or the transport's words), and when the send gave up on it.</summary>
public sealed record NotSent(string Reason, DateTimeOffset At);

/// <param name="NotSent">Set when this recipient's copy was not sent: nobody got it, so no open is to be expected.</param>
public sealed record RecipientSummary(Guid Id, string Address, string? Name, RecipientRole Role, Counts Counts, NotSent? NotSent = null);

public sealed record MessageSummary(
    Guid Id, string Subject, string FromAddress, string Sender, MessageSource Source, bool PerRecipient,
    DateTimeOffset CreatedAt, DateTimeOffset? SentAt, Counts Counts, List<RecipientSummary> Recipients)
{
    /// <summary>How many recipients' copies were not sent (each recipient's <see cref="RecipientSummary.NotSent"/>).</summary>
    public int NotSentCount => Recipients.Count(r => r.NotSent is not null);
}

/// <summary>Counts for the message list and page. Human events count; machine events and the sender's own are counted apart.</summary>
public static class MessageStats
{
    /// <summary>Messages the user may see: a member their own, a team admin the team's (unless only their own are asked for).</summary>
    public static IQueryable<TrackedMessage> Visible(AppDbContext db, CurrentUser user, bool ownOnly = false) =>
        user.IsAdmin && !ownOnly
            ? db.Messages.Where(m => m.TeamId == user.TeamId)
            : db.Messages.Where(m => m.TeamId == user.TeamId && m.UserId == user.Id);

    /// <summary>The messages' summaries, in the order of <paramref name="messages"/>: each list orders its query itself
    /// (the web list by send time, the API by registration time, as their pages go).</summary>
    /// <param name="upToEventId">Count only events up to this id, so that a page and the live feed that continues
    /// after that id neither miss nor double-count an event.</param>
    public static async Task<List<MessageSummary>> SummarizeAsync(AppDbContext db, IQueryable<TrackedMessage> messages, CancellationToken ct,
        long? upToEventId = null)
    {
        var rows = await messages
            .Select(m => new
            {
                m.Id, m.Subject, m.FromAddress, Sender = m.User!.Email, m.Source, m.PerRecipient, m.CreatedAt, m.SentAt,
                Recipients = m.Recipients.Select(r => new { r.Id, r.Address, r.Name, r.Role, r.CopyId }).ToList(),
            })
            .AsNoTracking().ToListAsync(ct);
        var ids = rows.Select(r => r.Id).ToList();
        // The copies that were not sent (few: most messages have none).
        var notSent = await db.Copies.Where(c => ids.Contains(c.TrackedMessageId) && c.NotSentReason != null)
            .Select(c => new { c.Id, c.NotSentReason, c.NotSentAt }).AsNoTracking().ToListAsync(ct);
        var notSentByCopy = notSent.ToDictionary(c => c.Id, c => new NotSent(c.NotSentReason!, c.NotSentAt ?? DateTimeOffset.MinValue));
        var events = db.Events.Where(e => e.TrackedMessageId != null && ids.Contains(e.TrackedMessageId.Value));
        if (upToEventId is { } max) events = events.Where(e => e.Id <= max);
        // Counted in the database: a message may have any number of (machine) events.
        var groups = await events
            .GroupBy(e => new { TrackedMessageId = e.TrackedMessageId!.Value, e.RecipientId, e.Kind, e.Verdict })
            .Select(g => new EventGroup(g.Key.TrackedMessageId, g.Key.RecipientId, g.Key.Kind, g.Key.Verdict, g.Count(),
                g.Min(e => e.OccurredAt), g.Max(e => e.OccurredAt)))
            .ToListAsync(ct);
        var byMessage = groups.ToLookup(e => e.MessageId);

        return rows
            .Select(r =>
            {
                var mine = byMessage[r.Id].ToList();
                var byRecipient = mine.ToLookup(e => e.RecipientId);
                return new MessageSummary(r.Id, r.Subject, r.FromAddress, r.Sender ?? "", r.Source, r.PerRecipient, r.CreatedAt, r.SentAt,
                    Count(mine),
                    r.Recipients.OrderBy(x => x.Role).ThenBy(x => x.Address)
                        .Select(x => new RecipientSummary(x.Id, x.Address, x.Name, x.Role, r.PerRecipient ? Count(byRecipient[x.Id]) : Counts.None,
                            notSentByCopy.GetValueOrDefault(x.CopyId)))
                        .ToList());
            })
            .ToList();
    }

    /// <summary>Pages read and downloads of tracked documents, by people, per message and recipient (the add-ins' panes show them).</summary>
    public static async Task<DocumentCounts> DocumentCountsAsync(AppDbContext db, IReadOnlyCollection<Guid> messageIds, CancellationToken ct)
    {
        var rows = await db.Events.Where(e => e.TrackedMessageId != null && messageIds.Contains(e.TrackedMessageId.Value) && e.Verdict == Verdict.Human
                                              && (e.Kind == EventKind.DocumentPage || e.Kind == EventKind.Download))
            .GroupBy(e => new { TrackedMessageId = e.TrackedMessageId!.Value, e.RecipientId, e.Kind })
            .Select(g => new DocumentCounts.Row(g.Key.TrackedMessageId, g.Key.RecipientId, g.Key.Kind, g.Count()))
            .ToListAsync(ct);
        return new DocumentCounts(rows);
    }

    sealed record EventGroup(Guid MessageId, Guid? RecipientId, EventKind Kind, Verdict Verdict, int Count, DateTimeOffset First, DateTimeOffset Last);

    static Counts Count(IEnumerable<EventGroup> groups)
    {
        int opens = 0, clicks = 0, mOpens = 0, mClicks = 0, views = 0, pages = 0, downloads = 0, mDocuments = 0, sOpens = 0, sClicks = 0, sDocuments = 0;
        bool replied = false, autoReplied = false, bounced = false;
        DateTimeOffset? first = null, lastOpen = null, lastClick = null, lastDocument = null;
        foreach (var g in groups)
        {
            var human = g.Verdict == Verdict.Human;
            // The sender's own view is neither a person's nor a machine's: counted apart from both.
            var self = g.Verdict == Verdict.Self;
            switch (g.Kind)
            {
                case EventKind.Open when human:
                    opens += g.Count;
                    if (first is null || g.First < first) first = g.First;
                    if (lastOpen is null || g.Last > lastOpen) lastOpen = g.Last;
                    break;
                case EventKind.Open when self:
                    sOpens += g.Count;
                    break;
                case EventKind.Open:
                    mOpens += g.Count;
                    break;
                case EventKind.Click when human:
                    clicks += g.Count;
                    if (lastClick is null || g.Last > lastClick) lastClick = g.Last;
                    break;
                case EventKind.Click when self:
                    sClicks += g.Count;
                    break;
                case EventKind.Click:
                    mClicks += g.Count;
                    break;
                case EventKind.Reply when human:
                    replied = true;
                    break;
                case EventKind.AutoReply:
                    autoReplied = true;
                    break;
                case EventKind.Bounce:
                    bounced = true;
                    break;
                case EventKind.DocumentView or EventKind.DocumentPage or EventKind.Download or EventKind.DocumentLink when human:
                    if (g.Kind == EventKind.DocumentView) views += g.Count;
                    else if (g.Kind == EventKind.DocumentPage) pages += g.Count;
                    else if (g.Kind == EventKind.Download) downloads += g.Count;
                    if (lastDocument is null || g.Last > lastDocument) lastDocument = g.Last;
                    break;
                case EventKind.DocumentView or EventKind.DocumentPage or EventKind.Download or EventKind.DocumentLink when self:
                    sDocuments += g.Count;
                    break;
                case EventKind.DocumentView or EventKind.DocumentPage or EventKind.Download or EventKind.DocumentLink:
                    mDocuments += g.Count;
                    break;
            }
        }
        return new Counts(opens, clicks, mOpens, mClicks, replied, first, lastOpen, lastClick, autoReplied, bounced,
            views, pages, downloads, lastDocument, mDocuments, sOpens, sClicks, sDocuments);
    }
}

public sealed class DocumentCounts(IReadOnlyList<DocumentCounts.Row> rows)
{
    public sealed record Row(Guid MessageId, Guid? RecipientId, EventKind Kind, int Count);

    /// <param name="recipient">Null: everyone's.</param>
    public int PagesRead(Guid message, Guid? recipient) => Sum(message, recipient, EventKind.DocumentPage);

    public int Downloads(Guid message, Guid? recipient) => Sum(message, recipient, EventKind.Download);

    int Sum(Guid message, Guid? recipient, EventKind kind) =>
        rows.Where(d => d.MessageId == message && (recipient is null || d.RecipientId == recipient) && d.Kind == kind).Sum(d => d.Count);
}
