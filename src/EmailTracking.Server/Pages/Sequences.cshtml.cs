using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Sequences;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>The user's sequences (an admin's: the team's) with their status and how many enrolments are in each state.</summary>
public sealed class SequencesModel(AppDbContext db) : PageModel
{
    public sealed record Row(Sequence Sequence, string Mailbox, string Owner, Dictionary<EnrolmentState, int> Counts);

    /// <summary>As many sequences as a page lists (each row counts its enrolments); the others are on the pages before and after it.</summary>
    public const int PageSize = 100;

    /// <summary>The sequences' order: the newest first, then by id.</summary>
    static readonly ListOrder<Sequence> Order = new(s => s.CreatedAt, s => s.Id);

    /// <summary>The page of sequences listed after this one (the "Older" link).</summary>
    [BindProperty(SupportsGet = true)] public string? Older { get; set; }
    /// <summary>The page of sequences listed before this one (the "Newer" link).</summary>
    [BindProperty(SupportsGet = true)] public string? Newer { get; set; }

    public List<Row> Rows { get; private set; } = [];
    /// <summary>All the sequences the list has, on every page.</summary>
    public int Total { get; private set; }
    /// <summary>The position (from 1) of the page's first sequence in the whole list.</summary>
    public int First { get; private set; }
    public ListPager Pager { get; private set; } = new("Pages of sequences", null, null);
    public bool IsAdmin { get; private set; }
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        IsAdmin = me.IsAdmin;
        ListPage<Sequence> shown;
        // The page, its position and the total read from one snapshot, so that they agree.
        await using (await ReadSnapshot.BeginAsync(db, ct))
            shown = await Order.PageAsync(SequenceRules.Visible(db, me).Include(s => s.Steps).AsNoTracking(), Older, Newer, PageSize, ct);
        (Total, First) = (shown.Total, shown.First);
        Pager = ListPager.For("Pages of sequences", "/sequences", shown);
        var list = shown.Rows;
        var mailboxIds = list.Select(s => s.MailboxId).Distinct().ToList();
        var mailboxes = await db.Mailboxes.Where(m => mailboxIds.Contains(m.Id)).ToDictionaryAsync(m => m.Id, m => m.Address, ct);
        var ownerIds = list.Select(s => s.UserId).Distinct().ToList();
        var owners = await db.Users.Where(u => ownerIds.Contains(u.Id)).ToDictionaryAsync(u => u.Id, u => u.Email ?? "", ct);
        foreach (var s in list)
            Rows.Add(new Row(s, mailboxes.GetValueOrDefault(s.MailboxId, "(removed)"), owners.GetValueOrDefault(s.UserId, ""), await SequenceRules.CountsAsync(db, s.Id, ct)));
    }
}
