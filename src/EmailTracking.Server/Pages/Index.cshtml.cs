using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Web;
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
            First = await Order.NewerThan(visible, top).CountAsync(ct) + 1;
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

    /// <summary>The messages' order in the list: newest first by the time that matters to the sender, then by id.</summary>
    static readonly ListOrder<TrackedMessage> Order = new(m => m.SentAt ?? m.CreatedAt, m => m.Id);

    /// <summary>The page asked for, newest first (a cursor that cannot be read, or past either end, shows the first page).</summary>
    async Task<IQueryable<TrackedMessage>> PageAsync(IQueryable<TrackedMessage> visible, CancellationToken ct)
    {
        var (rows, shown, shownIsOlder) = await Order.WindowAsync(visible, Older, Newer, PageSize, ct);
        (Shown, ShownIsOlder) = (shown, shownIsOlder);
        return rows;
    }

    /// <summary>This list (same scope) with machines shown or not, on the same page.</summary>
    public string ListUrl(bool machines) => ListUrl(machines, Shown is { } c ? (ShownIsOlder ? "older" : "newer", c) : null);

    /// <summary>The page before or after this one, machines shown as they are now.</summary>
    public string OlderUrl => ListUrl(Machines, ("older", OlderCursor!.Value));
    public string NewerUrl => ListUrl(Machines, ("newer", NewerCursor!.Value));

    /// <summary>The links under the list (app.js adds "Older" when the live feed pushes a message off the first page).</summary>
    public ListPager Pager => new("Pages of messages", NewerCursor is null ? null : NewerUrl, OlderCursor is null ? null : OlderUrl);

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
