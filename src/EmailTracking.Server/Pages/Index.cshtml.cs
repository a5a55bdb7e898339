using System.Globalization;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Messages;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The tracked messages, newest first by the time that matters to the sender: when the mail left, or when it was
/// registered while it has not left yet. Pages are keyset pages (<see cref="ListCursor"/>): "older than this message" or
/// "newer than this message", so that messages registered while someone reads the list shift nothing under them.
/// </summary>
public sealed class IndexModel(AppDbContext db) : PageModel
{
    /// <summary>
    /// As many as the page showed before it had pages: a page is one query, and the live feed updates only the rows it
    /// has, so a longer page would cost every load more than it gives a reader who scrolls.
    /// </summary>
    public const int PageSize = 100;

    /// <summary>
    /// Recipient rows a message shows in the list; the rest are on its own page. A message to hundreds of people would
    /// otherwise fill screens of the list with one message.
    /// </summary>
    public const int MaxRecipientRows = 10;

    /// <summary>
    /// The recipients a message's list rows show: those who did something first, the latest first, then the others in
    /// the message's order (To, Cc, Bcc, by address); at most <see cref="MaxRecipientRows"/>.
    /// </summary>
    public static List<RecipientSummary> ShownRecipients(MessageSummary m)
    {
        if (m.Recipients.Count <= MaxRecipientRows) return m.Recipients;
        // A stable sort: those who did nothing keep the message's order after the others.
        return [.. m.Recipients
            .Select(r => (Recipient: r, Latest: Web.Display.LastActivity(r.Counts)?.At))
            .OrderByDescending(x => x.Latest is not null || x.Recipient.Counts.Replied).ThenByDescending(x => x.Latest ?? DateTimeOffset.MinValue)
            .Take(MaxRecipientRows).Select(x => x.Recipient)];
    }

    [BindProperty(SupportsGet = true)] public bool Machines { get; set; }
    [BindProperty(SupportsGet = true)] public string? Scope { get; set; }
    /// <summary>The page of messages listed after this one (the "Older" link).</summary>
    [BindProperty(SupportsGet = true)] public string? Older { get; set; }
    /// <summary>The page of messages listed before this one (the "Newer" link).</summary>
    [BindProperty(SupportsGet = true)] public string? Newer { get; set; }

    public List<MessageSummary> Messages { get; private set; } = [];
    public List<ActivityItem> Recent { get; private set; } = [];
    /// <summary>Machines' events among the recent ones the feed leaves out ("N machine events … hidden").</summary>
    public int HiddenRecent { get; private set; }
    /// <summary>The sender's own views among them (verdict self), counted apart: they are no machine's.</summary>
    public int HiddenOwnRecent { get; private set; }
    public long LastEventId { get; private set; }
    public long LastChangeId { get; private set; }
    public bool IsAdmin { get; private set; }
    public FeedScope FeedScope { get; private set; }
    /// <summary>All the messages this list shows, on every page.</summary>
    public int Total { get; private set; }
    /// <summary>The position (from 1) of the page's first message in the whole list.</summary>
    public int First { get; private set; }
    /// <summary>The cursor the page as shown came from, kept when machines are shown or hidden.</summary>
    public ListCursor? Shown { get; private set; }
    public bool ShownIsOlder { get; private set; }
    public ListCursor? OlderCursor { get; private set; }
    public ListCursor? NewerCursor { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        IsAdmin = me.IsAdmin;
        FeedScope = IsAdmin && Scope == "team" ? FeedScope.Team : FeedScope.Mine;
        var visible = MessageStats.Visible(db, me, ownOnly: FeedScope == FeedScope.Mine);
        // The feed continues after LastEventId and LastChangeId: everything on the page counts up to them and nothing
        // beyond, all read from one snapshot (the page, its position and the total too, so that they agree).
        await using var snapshot = await ReadSnapshot.BeginAsync(db, ct);
        LastEventId = await ActivityQuery.LatestIdAsync(db, me, FeedScope, ct);
        LastChangeId = await ActivityQuery.LatestChangeIdAsync(db, me, FeedScope, ct);
        Messages = await MessageStats.SummarizeAsync(db, await PageAsync(visible, ct), ct, LastEventId);
        Total = await visible.CountAsync(ct);
        if (Messages.Count > 0)
        {
            var top = ListCursor.Of(Messages[0]);
            First = await ListCursor.NewerThan(visible, top).CountAsync(ct) + 1;
            if (First > 1) NewerCursor = top;
            if (First - 1 + Messages.Count < Total) OlderCursor = ListCursor.Of(Messages[^1]);
        }
        var events = ActivityQuery.Visible(db, me, FeedScope).Where(e => e.Id <= LastEventId);
        var recent = await ActivityQuery.Project(db, events).OrderByDescending(i => i.Id).Take(100).AsNoTracking().ToListAsync(ct);
        HiddenRecent = Machines ? 0 : recent.Count(r => !r.ShownByDefault && r.Verdict != Verdict.Self);
        HiddenOwnRecent = Machines ? 0 : recent.Count(r => !r.ShownByDefault && r.Verdict == Verdict.Self);
        Recent = [.. recent.Where(r => Machines || r.ShownByDefault).Take(30)];
    }

    /// <summary>
    /// One message's rows as the list shows them, counting the events up to <paramref name="upTo"/>. The live feed asks
    /// for them when a recipient the rows leave out (past <see cref="MaxRecipientRows"/>) does something: who the rows
    /// show depends on who did what, and the page has nothing of the others to show them with. The rows say up to which
    /// verdict change they count (data-counted-changes), so that the feed takes back none of those a second time.
    /// </summary>
    public async Task<IActionResult> OnGetRowsAsync(Guid message, long upTo, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        FeedScope = me.IsAdmin && Scope == "team" ? FeedScope.Team : FeedScope.Mine;
        var visible = MessageStats.Visible(db, me, ownOnly: FeedScope == FeedScope.Mine);
        await using var snapshot = await ReadSnapshot.BeginAsync(db, ct);
        var changes = await ActivityQuery.LatestChangeIdAsync(db, me, FeedScope, ct);
        var summary = (await MessageStats.SummarizeAsync(db, visible.Where(m => m.Id == message), ct, upTo)).FirstOrDefault();
        if (summary is null) return NotFound();
        return Partial("_MessageRows", new MessageRows(summary, Machines, FeedScope == FeedScope.Team, changes));
    }

    /// <summary>
    /// The page asked for, newest first. A cursor that cannot be read (cut short when copied, edited by hand) shows the
    /// first page rather than an error; so does one past either end, where there is nothing to show.
    /// </summary>
    async Task<IQueryable<TrackedMessage>> PageAsync(IQueryable<TrackedMessage> visible, CancellationToken ct)
    {
        if (ListCursor.TryParse(Older, out var older) && await ListCursor.OlderThan(visible, older).AnyAsync(ct))
        {
            (Shown, ShownIsOlder) = (older, true);
            return ListCursor.Newest(ListCursor.OlderThan(visible, older)).Take(PageSize);
        }
        if (ListCursor.TryParse(Newer, out var newer))
        {
            // The page ends just before the cursor and starts PageSize messages up from it. With fewer than a page
            // above it, those are the newest there are: that is the first page.
            var start = await ListCursor.NewerThan(visible, newer)
                .OrderBy(m => m.SentAt ?? m.CreatedAt).ThenBy(m => m.Id)
                .Skip(PageSize - 1)
                .Select(m => new { At = m.SentAt ?? m.CreatedAt, m.Id })
                .FirstOrDefaultAsync(ct);
            if (start is not null)
            {
                (Shown, ShownIsOlder) = (newer, false);
                return ListCursor.Newest(ListCursor.AtOrOlderThan(visible, new ListCursor(start.At, start.Id))).Take(PageSize);
            }
        }
        return ListCursor.Newest(visible).Take(PageSize);
    }

    /// <summary>This list (same scope) with machines shown or not, on the same page.</summary>
    public string ListUrl(bool machines) => ListUrl(machines, Shown is { } c ? (ShownIsOlder ? "older" : "newer", c) : null);

    /// <summary>The page before or after this one, machines shown as they are now.</summary>
    public string OlderUrl => ListUrl(Machines, ("older", OlderCursor!.Value));
    public string NewerUrl => ListUrl(Machines, ("newer", NewerCursor!.Value));

    string ListUrl(bool machines, (string Name, ListCursor Cursor)? page)
    {
        var q = new QueryBuilder();
        if (FeedScope == FeedScope.Team) q.Add("scope", "team");
        if (machines) q.Add("machines", "true");
        if (page is { } p) q.Add(p.Name, p.Cursor.ToString());
        var s = q.ToString();
        return s.Length == 0 ? "/" : "/" + s;
    }
}

/// <summary>One message's rows in the list (<c>_MessageRows</c>).</summary>
/// <param name="Team">The team's list: each message says whose it is.</param>
/// <param name="CountedChanges">The last verdict change the counts include, when the rows were asked for apart from the page.</param>
public sealed record MessageRows(MessageSummary Message, bool Machines, bool Team, long? CountedChanges = null);

/// <summary>
/// A place in the message list: a message's list time (sent, or registered while not sent) and its id, which breaks
/// ties so that every message has one place and none is shown twice or skipped across pages. Written in a URL as
/// <c>UTC-ticks_id</c>.
/// </summary>
public readonly record struct ListCursor(DateTimeOffset At, Guid Id)
{
    public static ListCursor Of(MessageSummary m) => new(m.SentAt ?? m.CreatedAt, m.Id);

    public override string ToString() => $"{At.UtcTicks.ToString(CultureInfo.InvariantCulture)}_{Id:N}";

    public static bool TryParse(string? text, out ListCursor cursor)
    {
        cursor = default;
        var parts = text?.Split('_');
        if (parts is not [var ticksText, var idText]
            || !long.TryParse(ticksText, NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            || ticks > DateTimeOffset.MaxValue.UtcTicks
            || !Guid.TryParseExact(idText, "N", out var id))
        {
            return false;
        }
        cursor = new ListCursor(new DateTimeOffset(ticks, TimeSpan.Zero), id);
        return true;
    }

    // The order and the comparisons below are one and the same, in the database: on SQLite ids compare as their stored
    // bytes, on PostgreSQL as uuids, and neither is .NET's Guid order, so nothing here orders in memory.
    public static IOrderedQueryable<TrackedMessage> Newest(IQueryable<TrackedMessage> q) =>
        q.OrderByDescending(m => m.SentAt ?? m.CreatedAt).ThenByDescending(m => m.Id);

    public static IQueryable<TrackedMessage> OlderThan(IQueryable<TrackedMessage> q, ListCursor c) =>
        q.Where(m => (m.SentAt ?? m.CreatedAt) < c.At || ((m.SentAt ?? m.CreatedAt) == c.At && m.Id.CompareTo(c.Id) < 0));

    public static IQueryable<TrackedMessage> AtOrOlderThan(IQueryable<TrackedMessage> q, ListCursor c) =>
        q.Where(m => (m.SentAt ?? m.CreatedAt) < c.At || ((m.SentAt ?? m.CreatedAt) == c.At && m.Id.CompareTo(c.Id) <= 0));

    public static IQueryable<TrackedMessage> NewerThan(IQueryable<TrackedMessage> q, ListCursor c) =>
        q.Where(m => (m.SentAt ?? m.CreatedAt) > c.At || ((m.SentAt ?? m.CreatedAt) == c.At && m.Id.CompareTo(c.Id) > 0));
}
