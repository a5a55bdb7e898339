using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Sequences;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>The user's sequences (an admin's: the team's) with their status and how many enrolments are in each state.</summary>
public sealed class SequencesModel(AppDbContext db) : PageModel
{
    public sealed record Row(Sequence Sequence, string Mailbox, string Owner, Dictionary<EnrolmentState, int> Counts);

    public List<Row> Rows { get; private set; } = [];
    public bool IsAdmin { get; private set; }
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        IsAdmin = me.IsAdmin;
        var list = await SequenceRules.Visible(db, me).Include(s => s.Steps).OrderByDescending(s => s.CreatedAt).Take(500).AsNoTracking().ToListAsync(ct);
        var mailboxIds = list.Select(s => s.MailboxId).Distinct().ToList();
        var mailboxes = await db.Mailboxes.Where(m => mailboxIds.Contains(m.Id)).ToDictionaryAsync(m => m.Id, m => m.Address, ct);
        var ownerIds = list.Select(s => s.UserId).Distinct().ToList();
        var owners = await db.Users.Where(u => ownerIds.Contains(u.Id)).ToDictionaryAsync(u => u.Id, u => u.Email ?? "", ct);
        foreach (var s in list)
            Rows.Add(new Row(s, mailboxes.GetValueOrDefault(s.MailboxId, "(removed)"), owners.GetValueOrDefault(s.UserId, ""), await SequenceRules.CountsAsync(db, s.Id, ct)));
    }
}
