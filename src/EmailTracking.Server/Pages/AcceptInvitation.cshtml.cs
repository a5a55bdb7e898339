using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Opened from an invitation mail (<see cref="Invitations"/>): names the team and the admin who invited, and lets the
/// member choose their first password (Identity's rules), which signs them in and records the invitation accepted. A GET
/// changes nothing, so that a mail scanner following the link does no harm. A link that does not work says why, as far as
/// the member's row tells: the invitation expired, was revoked (the member removed or deactivated), or was used already.
/// Nothing about the team or the admin is shown unless the link's token is good.
/// </summary>
/// <remarks>
/// The token is the invitation's (<see cref="InvitationTokenProvider"/>: the member's security stamp, its own lifetime by
/// the link clock). Choosing the password gives the account a new stamp: the link works once, and so does any other
/// invitation sent before it. Links mailed before this page existed open the reset page, which sends them here.
/// </remarks>
public sealed class AcceptInvitationModel(UserManager<User> users, SignInManager<User> signIn, Invitations invitations, DeviceCookie device,
    AppDbContext db, TimeProvider clock, [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider linkClock) : PageModel
{
    public const string PagePath = "/accept-invitation";

    public enum LinkState
    {
        /// <summary>Not a whole link, or one whose token does not work for a reason the member's row does not tell.</summary>
        Invalid,
        Ready,
        Expired,
        /// <summary>Revoked by an admin: the member is gone, or deactivated.</summary>
        Revoked,
        /// <summary>Accepted already (or a password was set since by other means).</summary>
        Used,
    }

    [BindProperty(SupportsGet = true, Name = "u")] public string? UserId { get; set; }
    [BindProperty(SupportsGet = true, Name = "t")] public string? Token { get; set; }
    [BindProperty] public string? New { get; set; }
    [BindProperty] public string? Confirm { get; set; }
    public LinkState State { get; private set; }
    public string? Email { get; private set; }
    public string? TeamName { get; private set; }
    /// <summary>The admin who sent the invitation, by name (or address); null when they are gone.</summary>
    public string? InvitedBy { get; private set; }
    /// <summary>For <see cref="LinkState.Invalid"/> while a newer invitation is pending: when that was sent.</summary>
    public DateTimeOffset? NewerInvitationAt { get; private set; }
    public TimeSpan Lifetime => invitations.Lifetime;

    public async Task<IActionResult> OnGetAsync()
    {
        await ReadAsync();
        return Answer();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await ReadAsync();
        if (State != LinkState.Ready || user is null) return Answer();
        if (string.IsNullOrEmpty(New)) ModelState.AddModelError(nameof(New), "Choose a password.");
        else if (New != Confirm) ModelState.AddModelError(nameof(Confirm), "The password and its repetition differ.");
        if (!ModelState.IsValid) return Answer();

        var now = linkClock.GetUtcNow();
        // Saved with the password, in the one update Identity makes (which also gives the account a new stamp).
        user.InvitationAcceptedAt = now;
        user.MustChangePassword = false;
        user.LastSignInAt = clock.GetUtcNow();
        var result = await users.AddPasswordAsync(user, New!);
        if (!result.Succeeded)
        {
            var describer = users.ErrorDescriber;
            // Accepted at the same moment by another request (the row changed under this one, or it has a password now).
            if (result.Errors.Any(e => e.Code == describer.ConcurrencyFailure().Code || e.Code == describer.UserAlreadyHasPassword().Code))
            {
                State = LinkState.Used;
                return Answer();
            }
            foreach (var e in result.Errors) ModelState.AddModelError(nameof(New), e.Description);
            return Answer();
        }
        await signIn.SignInAsync(user, isPersistent: true);
        device.Issue(HttpContext, user.Id);
        return LocalRedirect("/");
    }

    async Task<User?> ReadAsync()
    {
        State = LinkState.Invalid;
        if (!Guid.TryParseExact(UserId, "N", out var id) || string.IsNullOrEmpty(Token) || Token.Length > 2048) return null;
        var user = await users.FindByIdAsync(id.ToString());
        // Revoking removes a member who never signed in: the link's member is gone.
        if (user is null)
        {
            State = LinkState.Revoked;
            return null;
        }
        var state = TeamMembers.StateOf(user.InvitedAt, user.InvitationAcceptedAt, user.InvitationRevokedAt, user.PasswordHash is not null,
            linkClock.GetUtcNow(), invitations.Lifetime);
        if (state == InvitationState.Accepted || user.PasswordHash is not null)
        {
            State = LinkState.Used;
            return null;
        }
        if (state == InvitationState.Revoked || Auth.IsShut(user.LockoutEnd, clock.GetUtcNow()))
        {
            State = LinkState.Revoked;
            return null;
        }
        if (!await users.VerifyUserTokenAsync(user, InvitationTokenProvider.ProviderName, InvitationTokenProvider.Purpose, Token))
        {
            if (state == InvitationState.Expired) State = LinkState.Expired;
            else if (state == InvitationState.Pending) NewerInvitationAt = user.InvitedAt;
            return null;
        }
        State = LinkState.Ready;
        Email = user.Email;
        TeamName = await db.Teams.Where(t => t.Id == user.TeamId).Select(t => t.Name).FirstAsync();
        if (user.InvitedById is { } by)
        {
            InvitedBy = await db.Users.Where(u => u.Id == by).Select(u => u.DisplayName ?? u.Email).FirstOrDefaultAsync();
        }
        return user;
    }

    IActionResult Answer()
    {
        // The token is in this page's address: no other site is told it, and no cache keeps it (no-cache too, as the
        // form's antiforgery token sets it, which otherwise overrides this and logs a warning for every page).
        Response.Headers["Referrer-Policy"] = "no-referrer";
        Response.Headers.CacheControl = "no-cache, no-store";
        Response.StatusCode = State switch
        {
            LinkState.Invalid => StatusCodes.Status400BadRequest,
            LinkState.Expired or LinkState.Revoked or LinkState.Used => StatusCodes.Status410Gone,
            _ when !ModelState.IsValid => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status200OK,
        };
        return Page();
    }
}
