using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>One document's readers: visits, time, time per page, how far, downloads.</summary>
public sealed class DocumentModel(AppDbContext db) : PageModel
{
    public ContentStatsResponse Stats { get; private set; } = null!;
    public bool Machines { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid id, bool? machines, CancellationToken ct)
    {
        var item = await ContentStats.Visible(db, CurrentUser.Required(User)).AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, ct);
        if (item is null) return NotFound();
        Machines = machines == true;
        Stats = await ContentStats.ForAsync(db, item, Machines, ct);
        return Page();
    }

    public static string Duration(long ms)
    {
        var t = TimeSpan.FromMilliseconds(ms);
        if (t.TotalSeconds < 60) return $"{t.TotalSeconds:0} s";
        if (t.TotalMinutes < 60) return $"{(int)t.TotalMinutes} min {t.Seconds} s";
        return $"{(int)t.TotalHours} h {t.Minutes} min";
    }
}
