using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Outlook;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The user's addresses: the one they sign in with and their aliases, each confirmed or not. Mail from any of them is
/// the user's own (never a reply), tracked mail may be sent from them, and mailboxes under them can be connected; a
/// confirmed one also signs the user in to the add-ins, and nobody else can take it. An unconfirmed one is confirmed
/// through a mail to it. The errors of the forms that need an address send people here. Below them, the Microsoft
/// accounts that sign the user in to the Outlook add-in, which the user can remove.
/// </summary>
public sealed class AddressesModel(AccountService accounts, AddressConfirmations confirmations, AppDbContext db, TimeProvider clock) : PageModel
{
    public List<MicrosoftAccount> MicrosoftAccounts { get; private set; } = [];
    /// <summary>The Microsoft account to remove: "link:{id}" or "login:{tenant}/{object id}".</summary>
    [BindProperty] public string? MicrosoftAccountKey { get; set; }
    [TempData] public string? RemovedMicrosoftAccount { get; set; }

    public List<AddressInfo> Addresses { get; private set; } = [];
    public bool MailConfigured => confirmations.Configured;
    public DateTimeOffset Now { get; private set; }
    [BindProperty] public string? Address { get; set; }
    /// <summary>The address typed in the add form, shown again when it was refused (else the field came back empty).</summary>
    public string? Typed { get; private set; }
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
            Typed = Address;
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

    /// <summary>Removes one of the user's Microsoft accounts: the add-in signed in with it no longer signs in as them.</summary>
    public async Task<IActionResult> OnPostRemoveMicrosoftAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var key = MicrosoftAccountKey ?? "";
        var removed = 0;
        if (key.StartsWith("link:", StringComparison.Ordinal) && long.TryParse(key.AsSpan(5), out var id))
        {
            removed = await db.MicrosoftAccountLinks.Where(l => l.Id == id && l.UserId == me.Id).ExecuteDeleteAsync(ct);
        }
        else if (key.StartsWith("login:", StringComparison.Ordinal))
        {
            var login = key[6..];
            removed = await db.UserLogins.Where(l => l.UserId == me.Id && l.LoginProvider == MicrosoftSignIn.LoginProvider && l.ProviderKey == login)
                .ExecuteDeleteAsync(ct);
        }
        if (removed == 0)
        {
            // Removed already (another tab), or never this user's: nothing to do, said plainly.
            ModelState.AddModelError(nameof(MicrosoftAccountKey), "That Microsoft account is not linked to your account (it may have been removed already).");
            Response.StatusCode = StatusCodes.Status404NotFound;
            await LoadAsync(ct);
            return Page();
        }
        RemovedMicrosoftAccount = "yes";
        return RedirectToPage();
    }

    async Task LoadAsync(CancellationToken ct)
    {
        Now = clock.GetUtcNow();
        var me = CurrentUser.Required(User).Id;
        Addresses = await accounts.AddressesAsync(me, ct);
        MicrosoftAccounts = (await Outlook.MicrosoftAccounts.OfAsync(db, [me], ct))[me];
    }
}
