using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Sequences;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>The team's email templates for sequences.</summary>
public sealed class TemplatesModel(AppDbContext db) : PageModel
{
    public sealed record Row(MailTemplate Template, List<string> Fields, string Author);

    public List<Row> Rows { get; private set; } = [];
    [TempData] public string? Notice { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var list = await SequenceRules.Templates(db, me).OrderBy(t => t.Name).AsNoTracking().ToListAsync(ct);
        var userIds = list.Select(t => t.UserId).Distinct().ToList();
        var authors = await db.Users.Where(u => userIds.Contains(u.Id)).ToDictionaryAsync(u => u.Id, u => u.Email ?? "", ct);
        Rows = [.. list.Select(t => new Row(t, MergeTemplates.FieldsUsed(t.Subject, t.Html), authors.GetValueOrDefault(t.UserId, "")))];
    }
}
