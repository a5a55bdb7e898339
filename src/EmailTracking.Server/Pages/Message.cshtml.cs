using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Messages;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

public sealed class MessageModel(AppDbContext db) : PageModel
{
    [BindProperty(SupportsGet = true)] public Guid Id { get; set; }
    [BindProperty(SupportsGet = true)] public bool Machines { get; set; }

    public MessagesApi.MessageDetail Detail { get; private set; } = null!;
    public long LastEventId { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var detail = await MessagesApi.LoadDetailAsync(db, CurrentUser.Required(User), Id, Machines, ct);
        if (detail is null) return NotFound();
        Detail = detail;
        LastEventId = db.Events.Where(e => e.TrackedMessageId == Id).Select(e => (long?)e.Id).Max() ?? 0;
        return Page();
    }
}
