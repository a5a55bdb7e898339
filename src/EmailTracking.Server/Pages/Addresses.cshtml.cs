using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The user's addresses: the one they sign in with and their aliases. Mail from any of them is the user's own (never a
/// reply), tracked mail may be sent from them, and mailboxes under them can be connected. The errors of those forms
/// send people here.
/// </summary>
public sealed class AddressesModel(AppDbContext db, AccountService accounts) : PageModel
{
    public List<string> Aliases { get; private set; } = [];
    public string SignInAddress { get; private set; } = "";
    [BindProperty] public string? Address { get; set; }
    /// <summary>The address just added, for the notice; kept across the redirect in TempData, not in the URL, where
    /// anyone could put words in the notice of a link they send.</summary>
    [TempData] public string? Added { get; set; }

    public async Task OnGetAsync() => await LoadAsync();

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        try
        {
            await accounts.AddAddressAsync(me.Id, Address ?? "", ct);
        }
        catch (AccountException e)
        {
            ModelState.AddModelError(nameof(Address), e.Message);
            await LoadAsync();
            return Page();
        }
        Added = AccountService.NormalizeAddress(Address);
        return RedirectToPage();
    }

    async Task LoadAsync()
    {
        var me = CurrentUser.Required(User);
        SignInAddress = await db.Users.Where(u => u.Id == me.Id).Select(u => u.Email!).FirstAsync();
        Aliases = await db.UserAddresses.Where(a => a.UserId == me.Id && a.Address != SignInAddress).Select(a => a.Address)
            .OrderBy(a => a).ToListAsync();
    }
}
