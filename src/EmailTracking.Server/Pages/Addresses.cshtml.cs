using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The user's addresses: the one they sign in with and their aliases, each confirmed or not. Mail from any of them is
/// the user's own (never a reply), tracked mail may be sent from them, and mailboxes under them can be connected; a
/// confirmed one also signs the user in to the add-ins, and nobody else can take it. An unconfirmed one is confirmed
/// through a mail to it. The errors of the forms that need an address send people here.
/// </summary>
public sealed class AddressesModel(AccountService accounts, AddressConfirmations confirmations, TimeProvider clock) : PageModel
{
    public List<AddressInfo> Addresses { get; private set; } = [];
    public bool MailConfigured => confirmations.Configured;
    public DateTimeOffset Now { get; private set; }
    [BindProperty] public string? Address { get; set; }
    /// <summary>The address just added, for the notice; kept across the redirect in TempData, not in the URL, where
    /// anyone could put words in the notice of a link they send.</summary>
    [TempData] public string? Added { get; set; }
    /// <summary>The address a confirmation mail just went to (TempData, as <see cref="Added"/>).</summary>
    [TempData] public string? Sent { get; set; }

    public async Task OnGetAsync(CancellationToken ct) => await LoadAsync(ct);

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
            await LoadAsync(ct);
            return Page();
        }
        Added = AccountService.NormalizeAddress(Address);
        return RedirectToPage();
    }

    /// <summary>Sends a confirmation mail to one of the user's unconfirmed addresses.</summary>
    public async Task<IActionResult> OnPostConfirmAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var outcome = await confirmations.RequestAsync(me.Id, Address, HttpContext, ct);
        if (outcome.Result != ConfirmationRequestResult.Sent)
        {
            ModelState.AddModelError(nameof(Address), outcome.Detail ?? "The confirmation mail was not sent.");
            if (outcome.Result is ConfirmationRequestResult.TooSoon or ConfirmationRequestResult.TooMany) Response.StatusCode = StatusCodes.Status429TooManyRequests;
            await LoadAsync(ct);
            return Page();
        }
        Sent = outcome.Address;
        return RedirectToPage();
    }

    async Task LoadAsync(CancellationToken ct)
    {
        Now = clock.GetUtcNow();
        Addresses = await accounts.AddressesAsync(CurrentUser.Required(User).Id, ct);
    }
}
