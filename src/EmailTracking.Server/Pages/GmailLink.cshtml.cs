using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Gmail;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Opened from the Gmail add-on's "Link your account" card (sign-in first, like every page): adds the Gmail address
/// Google verified to the signed-in user's addresses, after they confirm.
/// </summary>
public sealed class GmailLinkModel(AppDbContext db, AccountService accounts, GmailAccountLink links) : PageModel
{
    public enum LinkState { Invalid, Ready, AlreadyYours, SomeoneElses, Linked }

    [BindProperty(SupportsGet = true, Name = "t")] public string? Token { get; set; }
    public LinkState State { get; private set; }
    public string? Address { get; private set; }
    public string Me { get; private set; } = "";

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        await ReadAsync(ct);
        return State == LinkState.Invalid ? InvalidPage() : Page();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        await ReadAsync(ct);
        if (State == LinkState.Invalid) return InvalidPage();
        if (State != LinkState.Ready) return Page();
        try
        {
            await accounts.LinkVerifiedAddressAsync(CurrentUser.Required(User).Id, Address!, ct);
            State = LinkState.Linked;
        }
        catch (Exception ex) when (ex is AccountException or DbUpdateException)
        {
            // Someone else proved the address between the page and the button (the verified login's key guards it).
            db.ChangeTracker.Clear();
            await ReadAsync(ct);
        }
        return Page();
    }

    async Task ReadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        Me = me.Email;
        Address = AccountService.NormalizeAddress(links.Read(Token));
        if (Address is null) { State = LinkState.Invalid; return; }
        // Only a user who signs in with it (their email, or verified) owns it: an alias anyone merely added (this user's
        // or another's) gives way when the address Google verified is linked.
        var owner = await AccountService.SignsInAs(db, Address).Select(u => (Guid?)u.Id).FirstOrDefaultAsync(ct);
        State = owner is null ? LinkState.Ready : owner != me.Id ? LinkState.SomeoneElses : LinkState.AlreadyYours;
    }

    IActionResult InvalidPage()
    {
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }
}
