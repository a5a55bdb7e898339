using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Opened from a reset mail: shows the form when the link's token is good (a GET changes nothing, so that a mail
/// scanner following the link does no harm) and sets the new password with Identity's reset, which checks the token and
/// the password rules and gives the account a new security stamp: the link stops working, and so do every other web
/// session and the live feeds they hold. A lock from wrong passwords is lifted too (whoever reads the sign-in mailbox
/// has just proved it is theirs, and the password the guesses were aimed at is gone); an administrator's is not.
/// </summary>
/// <remarks>
/// With <c>k=invite</c> it is an invitation's link (<see cref="Invitations"/>, as the mail builds it): this page sends it
/// on to the invitation's own page (<see cref="AcceptInvitationModel"/>), the token untouched.
/// </remarks>
public sealed class ResetPasswordModel(UserManager<User> users, PasswordResets resets, IOptions<IdentityOptions> identity, TimeProvider clock) : PageModel
{
    public enum ResetState { Invalid, Closed, Ready, Done }

    [BindProperty(SupportsGet = true, Name = "u")] public string? UserId { get; set; }
    [BindProperty(SupportsGet = true, Name = "t")] public string? Token { get; set; }
    [BindProperty(SupportsGet = true, Name = "k")] public string? Kind { get; set; }
    public bool IsInvitation => Kind == Invitations.Kind;
    [BindProperty] public string? New { get; set; }
    [BindProperty] public string? Confirm { get; set; }
    public ResetState State { get; private set; }
    public string? Email { get; private set; }
    public TimeSpan LinkLifetime => resets.LinkLifetime;

    public async Task<IActionResult> OnGetAsync()
    {
        if (IsInvitation) return ToInvitation();
        await ReadAsync();
        return Answer();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (IsInvitation) return ToInvitation();
        var user = await ReadAsync();
        if (State != ResetState.Ready) return Answer();
        if (string.IsNullOrEmpty(New)) ModelState.AddModelError(nameof(New), "Give a new password.");
        else if (New != Confirm) ModelState.AddModelError(nameof(Confirm), "The new password and its repetition differ.");
        if (!ModelState.IsValid) return Answer();

        var result = await users.ResetPasswordAsync(user!, Token!, New!);
        if (!result.Succeeded)
        {
            // Used or made stale between the page and the button (another reset, a password change).
            if (result.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.InvalidToken))) State = ResetState.Invalid;
            foreach (var e in result.Errors.Where(e => e.Code != nameof(IdentityErrorDescriber.InvalidToken))) ModelState.AddModelError(nameof(New), e.Description);
            return Answer();
        }
        if (user!.MustChangePassword)
        {
            // Chosen by its owner now, not by an administrator.
            user.MustChangePassword = false;
            await users.UpdateAsync(user);
        }
        if (await users.IsLockedOutAsync(user!) || await users.GetAccessFailedCountAsync(user!) > 0)
        {
            await users.SetLockoutEndDateAsync(user!, null);
            await users.ResetAccessFailedCountAsync(user!);
        }
        State = ResetState.Done;
        return Answer();
    }

    async Task<User?> ReadAsync()
    {
        State = ResetState.Invalid;
        if (!Guid.TryParseExact(UserId, "N", out var id) || string.IsNullOrEmpty(Token) || Token.Length > 2048) return null;
        var user = await users.FindByIdAsync(id.ToString());
        if (user is null) return null;
        if (!await users.VerifyUserTokenAsync(user, identity.Value.Tokens.PasswordResetTokenProvider, UserManager<User>.ResetPasswordTokenPurpose, Token)) return null;
        Email = user.Email;
        State = Auth.IsShut(user.LockoutEnd, clock.GetUtcNow()) ? ResetState.Closed : ResetState.Ready;
        return user;
    }

    /// <summary>The invitation's page, with the link's user and token as they came (a GET: nothing is set on the way).</summary>
    RedirectResult ToInvitation()
    {
        Response.Headers["Referrer-Policy"] = "no-referrer";
        Response.Headers.CacheControl = "no-store";
        return Redirect($"{AcceptInvitationModel.PagePath}?u={Uri.EscapeDataString(UserId ?? "")}&t={Uri.EscapeDataString(Token ?? "")}");
    }

    IActionResult Answer()
    {
        // The token is in this page's address: no other site is told it, and no cache keeps it (no-cache too, as the
        // form's antiforgery token sets it, which otherwise overrides this and logs a warning for every page).
        Response.Headers["Referrer-Policy"] = "no-referrer";
        Response.Headers.CacheControl = "no-cache, no-store";
        Response.StatusCode = State switch
        {
            ResetState.Invalid => StatusCodes.Status400BadRequest,
            ResetState.Closed => StatusCodes.Status403Forbidden,
            _ when !ModelState.IsValid => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status200OK,
        };
        return Page();
    }
}
