using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Messages;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

public sealed class MessageModel(AppDbContext db) : PageModel
{
    [BindProperty(SupportsGet = true)] public Guid Id { get; set; }
    [BindProperty(SupportsGet = true)] public bool Machines { get; set; }

    /// <summary>What the page that sent the message says of it (the Compose page: sent to whom, or who it did not reach).</summary>
    public const string NoticeKey = "MessageNotice";
    /// <summary>Set when the notice tells of copies that were not sent.</summary>
    public const string NoticeProblemKey = "MessageNoticeProblem";
    [TempData(Key = NoticeKey)] public string? Notice { get; set; }
    [TempData(Key = NoticeProblemKey)] public bool NoticeProblem { get; set; }

    public MessagesApi.MessageDetail Detail { get; private set; } = null!;
    public long LastEventId { get; private set; }
    public long LastChangeId { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        // The live feed continues after LastEventId and LastChangeId, so the page shows everything up to them and
        // nothing beyond, all read from one snapshot.
        await using var snapshot = await ReadSnapshot.BeginAsync(db, ct);
        LastEventId = await db.Events.Select(e => (long?)e.Id).MaxAsync(ct) ?? 0;
        LastChangeId = await db.VerdictChanges.Select(c => (long?)c.Id).MaxAsync(ct) ?? 0;
        var detail = await MessagesApi.LoadDetailAsync(db, CurrentUser.Required(User), Id, Machines, ct, LastEventId);
        if (detail is null) return NotFound();
        Detail = detail;
        return Page();
    }
}
