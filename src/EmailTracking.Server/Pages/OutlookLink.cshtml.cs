using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Outlook;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Opened from the Outlook add-in's "Link this Microsoft account" button (sign-in first, like every page): links the
/// Microsoft account named in the link (the one whose token asked for it) to the signed-in user, after they confirm.
/// Whoever is signed in is who it links to: the page names both accounts, and the confirmation is the protection, as
/// on the Gmail add-on's link page.
/// </summary>
public sealed class OutlookLinkModel(AppDbContext db, OutlookAccountLink links, IOptions<AzureAdOptions> azureAd, TimeProvider clock) : PageModel
{
    public enum LinkState { Invalid, Used, TenantNotAllowed, Ready, AlreadyYours, SomeoneElses, Linked }

    [BindProperty(SupportsGet = true, Name = "t")] public string? Token { get; set; }
    public LinkState State { get; private set; }
    public OutlookAccountLink.Account? Account { get; private set; }
    public string Me { get; private set; } = "";

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        await ReadAsync(ct);
        return Answer();
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        await ReadAsync(ct);
        if (State != LinkState.Ready) return Answer();
        var a = Account!;
        var now = clock.GetUtcNow();
        // The link's id and the account's row in one save: a link used twice at once, or an account linked by two people
        // at once, fails on a key and links nothing more.
        db.UsedLinkTokens.Add(new UsedLinkToken { Id = a.Id, ExpiresAt = a.ExpiresAt });
        db.MicrosoftAccountLinks.Add(new MicrosoftAccountLink
        {
            UserId = CurrentUser.Required(User).Id, TenantId = a.TenantId, ObjectId = a.ObjectId, DisplayName = a.DisplayName,
            SignInName = a.SignInName, LinkedAt = now,
        });
        try
        {
            await db.SaveChangesAsync(ct);
            State = LinkState.Linked;
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            await ReadAsync(ct);
            return Answer();
        }
        // Used links are kept only until they would have expired anyway.
        await db.UsedLinkTokens.Where(u => u.ExpiresAt < now).ExecuteDeleteAsync(ct);
        return Page();
    }

    async Task ReadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        Me = me.Email;
        Account = links.Read(Token);
        if (Account is not { } a) { State = LinkState.Invalid; return; }
        // The server's settings may have changed since the add-in asked for the link.
        var options = azureAd.Value;
        if (!options.IsConfigured
            || options.AllowedTenants.Length > 0 && !options.AllowedTenants.Contains(a.TenantId, StringComparer.OrdinalIgnoreCase))
        {
            State = LinkState.TenantNotAllowed;
            return;
        }
        if (await db.UsedLinkTokens.AnyAsync(u => u.Id == a.Id, ct)) { State = LinkState.Used; return; }
        var key = MicrosoftSignIn.LoginKey(a.TenantId, a.ObjectId);
        var owner = await MicrosoftSignIn.LinkedUserAsync(db, a.TenantId, a.ObjectId, ct)
            ?? await db.UserLogins.Where(l => l.LoginProvider == MicrosoftSignIn.LoginProvider && l.ProviderKey == key).Select(l => (Guid?)l.UserId).FirstOrDefaultAsync(ct);
        State = owner is null ? LinkState.Ready : owner != me.Id ? LinkState.SomeoneElses : LinkState.AlreadyYours;
    }

    IActionResult Answer()
    {
        Response.StatusCode = State switch
        {
            LinkState.Invalid => StatusCodes.Status400BadRequest,
            LinkState.Used => StatusCodes.Status410Gone,
            LinkState.TenantNotAllowed => StatusCodes.Status403Forbidden,
            LinkState.SomeoneElses => StatusCodes.Status409Conflict,
            _ => StatusCodes.Status200OK,
        };
        return Page();
    }
}
