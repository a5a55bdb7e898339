using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Messages;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

public sealed class IndexModel(AppDbContext db) : PageModel
{
    [BindProperty(SupportsGet = true)] public bool Machines { get; set; }
    [BindProperty(SupportsGet = true)] public string? Scope { get; set; }

    public List<MessageSummary> Messages { get; private set; } = [];
    public List<ActivityItem> Recent { get; private set; } = [];
    public int HiddenRecent { get; private set; }
    public long LastEventId { get; private set; }
    public long LastChangeId { get; private set; }
    public bool IsAdmin { get; private set; }
    public FeedScope FeedScope { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        IsAdmin = me.IsAdmin;
        FeedScope = IsAdmin && Scope == "team" ? FeedScope.Team : FeedScope.Mine;
        var visible = MessageStats.Visible(db, me, ownOnly: FeedScope == FeedScope.Mine);
        // The feed continues after LastEventId and LastChangeId: everything on the page counts up to them and nothing
        // beyond, all read from one snapshot.
        await using var snapshot = await ReadSnapshot.BeginAsync(db, ct);
        LastEventId = await ActivityQuery.LatestIdAsync(db, me, FeedScope, ct);
        LastChangeId = await ActivityQuery.LatestChangeIdAsync(db, me, FeedScope, ct);
        Messages = await MessageStats.SummarizeAsync(db, visible.OrderByDescending(m => m.CreatedAt).Take(100), ct, LastEventId);
        var events = ActivityQuery.Visible(db, me, FeedScope).Where(e => e.Id <= LastEventId);
        var recent = await ActivityQuery.Project(db, events).OrderByDescending(i => i.Id).Take(100).AsNoTracking().ToListAsync(ct);
        HiddenRecent = Machines ? 0 : recent.Count(r => !r.ShownByDefault);
        Recent = [.. recent.Where(r => Machines || r.ShownByDefault).Take(30)];
    }
}
