using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Opened from a confirmation mail (sign-in first, like every page): shows which address is to be confirmed for which
/// account, and confirms it when the user presses the button (a GET changes nothing, so that a mail scanner following
/// the link does no harm). A token that is altered, expired, or made for another account changes nothing.
/// </summary>
public sealed class AddressConfirmModel(AccountService accounts, AddressConfirmationLinks links, AppDbContext db) : PageModel
{
    public enum ConfirmState { Invalid, OtherAccount, Ready, Confirmed, AlreadyConfirmed, SomeoneElses }

    [BindProperty(SupportsGet = true, Name = "t")] public string? Token { get; set; }
    public ConfirmState State { get; private set; }
    public string? Address { get; private set; }
    public string Me { get; private set; } = "";

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        await ReadAsync(ct);
        return Answer();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        await ReadAsync(ct);
        if (State != ConfirmState.Ready) return Answer();
        try
        {
            await accounts.LinkVerifiedAddressAsync(CurrentUser.Required(User).Id, Address!, ct);
            State = ConfirmState.Confirmed;
        }
        catch (Exception ex) when (ex is AccountException or DbUpdateException)
        {
            // Someone else proved the address between the page and the button (the login's key guards it).
            db.ChangeTracker.Clear();
            await ReadAsync(ct);
        }
        return Answer();
    }

    async Task ReadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        Me = me.Email;
        Address = null;
        if (links.Read(Token) is not { } link) { State = ConfirmState.Invalid; return; }
        // Another account's link says nothing about its address or its account.
        if (link.UserId != me.Id) { State = ConfirmState.OtherAccount; return; }
        Address = link.Address;
        State = await accounts.IsVerifiedAsync(me.Id, Address, ct) ? ConfirmState.AlreadyConfirmed
            : await AccountService.SignsInAs(db, Address).AnyAsync(ct) ? ConfirmState.SomeoneElses
            : ConfirmState.Ready;
    }

    IActionResult Answer()
    {
        Response.StatusCode = State switch
        {
            ConfirmState.Invalid => StatusCodes.Status400BadRequest,
            ConfirmState.OtherAccount => StatusCodes.Status403Forbidden,
            ConfirmState.SomeoneElses => StatusCodes.Status409Conflict,
            _ => StatusCodes.Status200OK,
        };
        return Page();
    }
}
