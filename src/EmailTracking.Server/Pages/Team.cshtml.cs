using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Outlook;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// A team's admins manage its members (<see cref="TeamMembers"/>): the list, adding a member (mailed an invitation to
/// choose their password when the server can send mail, else with a one-time initial password shown on the answer to
/// the form and nowhere else), sending an invitation again or revoking a pending one, changing roles, deactivating and
/// reactivating, unlinking a member's Microsoft accounts (the Outlook add-in's sign-in). Members who
/// are not admins are told the page is the admins' (403), its forms included. A member of another team is not found.
/// </summary>
public sealed class TeamModel(TeamMembers members, Invitations invitations, UserManager<User> users, SignInManager<User> signIn, MailboxWatcher watcher, TimeProvider clock) : PageModel
{
    public bool AdminsOnly { get; private set; }
    public Team Team { get; private set; } = null!;
    public List<TeamMember> Members { get; private set; } = [];
    /// <summary>Each member's Microsoft accounts (the Outlook add-in's sign-in), by member id.</summary>
    public Dictionary<Guid, List<MicrosoftAccount>> MicrosoftAccounts { get; private set; } = [];
    public Guid MeId { get; private set; }
    public DateTimeOffset Now { get; private set; }

    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? DisplayName { get; set; }
    /// <summary>The new member's role, or the member's new one: "Member" or "Admin".</summary>
    [BindProperty] public string? Role { get; set; }

    /// <summary>The member just added and their initial password: this answer only.</summary>
    public (string Email, string Password)? Added { get; private set; }
    /// <summary>The member just added and mailed an invitation.</summary>
    public string? Invited { get; private set; }
    /// <summary>Whether members are invited by mail (<see cref="Invitations"/>) rather than given an initial password.</summary>
    public bool InvitesByMail => invitations.Offered;
    public TimeSpan InvitationLifetime => invitations.Lifetime;
    [TempData] public string? Notice { get; set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        await LoadAsync(me, ct);
        return Page();
    }

    public async Task<IActionResult> OnPostAddAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        if (ParseRole(Role) is not { } role) ModelState.AddModelError(nameof(Role), "Choose the new member's role: Member or Admin.");
        else
        {
            try
            {
                var (member, password) = await members.AddAsync(me, Email, DisplayName, role, initialPassword: !InvitesByMail, ct);
                Email = DisplayName = Role = null;
                if (password is not null)
                {
                    Added = (member.Email!, password);
                    // The password is in this answer only: no cache keeps it (no-cache as well, as the page's antiforgery
                    // token sets it, which otherwise overrides this with a warning in the log).
                    Response.Headers.CacheControl = "no-cache, no-store";
                }
                else
                {
                    try
                    {
                        await members.InviteAsync(me, member.Id, ct);
                        Invited = member.Email;
                    }
                    catch (SystemMailException ex)
                    {
                        // The member is added all the same (without a password): the admin sends the mail again later.
                        ModelState.AddModelError("", $"{member.Email} was added, but the invitation mail did not go. {ex.Message} Then use Resend invitation in the list.");
                    }
                }
            }
            catch (AccountException ex)
            {
                ModelState.AddModelError(nameof(Email), ex.Message);
            }
        }
        await LoadAsync(me, ct);
        return Page();
    }

    public Task<IActionResult> OnPostRoleAsync(Guid id, CancellationToken ct) => ChangeAsync(id, async me =>
    {
        if (ParseRole(Role) is not { } role) throw new AccountException("Choose a role: Member or Admin.");
        var member = await members.SetRoleAsync(me, id, role, ct);
        // The cookie names the role: the member's open web sessions sign in again to take the new one up.
        return member.Id == me.Id ? $"You are now {(role == TeamRole.Admin ? "an admin" : "a member")}."
            : $"{member.Email} is now {(role == TeamRole.Admin ? "an admin" : "a member")}; their open web sessions ask them to sign in again.";
    }, ct);

    public Task<IActionResult> OnPostInviteAsync(Guid id, CancellationToken ct) => ChangeAsync(id, async me =>
    {
        try
        {
            var member = await members.InviteAsync(me, id, ct);
            return $"An invitation was mailed to {member.Email}: its link lets them choose their password, once, for {Invitations.DescribeLifetime(invitations.Lifetime)}.";
        }
        catch (SystemMailException ex)
        {
            throw new AccountException(ex.Message);
        }
    }, ct);

    public Task<IActionResult> OnPostRevokeAsync(Guid id, CancellationToken ct) => ChangeAsync(id, async me =>
    {
        var (email, removed) = await members.RevokeInvitationAsync(me, id, ct);
        if (removed) return $"The invitation of {email} is revoked and they are removed from the team: its link no longer works.";
        // Deactivated rather than removed: what they own stays with the team, and their mailboxes are no longer watched.
        watcher.Wake();
        return $"The invitation of {email} is revoked: its link no longer works. They were deactivated rather than removed, as they have data in the team.";
    }, ct);

    public Task<IActionResult> OnPostUnlinkMicrosoftAsync(Guid id, CancellationToken ct) => ChangeAsync(id, async me =>
    {
        var (email, removed) = await members.UnlinkMicrosoftAsync(me, id, ct);
        return removed switch
        {
            0 => $"{email} had no Microsoft account linked (it may have been unlinked already).",
            1 => $"The Microsoft account of {email} is unlinked: the Outlook add-in signed in with it no longer signs in as them.",
            _ => $"The {removed} Microsoft accounts of {email} are unlinked: the Outlook add-in signed in with them no longer signs in as them.",
        };
    }, ct);

    public Task<IActionResult> OnPostDeactivateAsync(Guid id, CancellationToken ct) => ChangeAsync(id, async me =>
    {
        var member = await members.DeactivateAsync(me, id, ct);
        // Their mailboxes' watches stop now rather than at the watcher's next look.
        watcher.Wake();
        return $"{member.Email} is deactivated: their sessions, API tokens and add-ins are signed out, and their mailboxes are no longer watched.";
    }, ct);

    public Task<IActionResult> OnPostReactivateAsync(Guid id, CancellationToken ct) => ChangeAsync(id, async me =>
    {
        var member = await members.ReactivateAsync(me, id, ct);
        watcher.Wake();
        return $"{member.Email} can sign in again.";
    }, ct);

    async Task<IActionResult> ChangeAsync(Guid id, Func<CurrentUser, Task<string>> change, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        try
        {
            Notice = await change(me);
        }
        catch (MemberNotFoundException)
        {
            return NotFound();
        }
        catch (AccountException ex)
        {
            ModelState.AddModelError("", ex.Message);
            if (ex is InvitationLimitException limited)
            {
                // The page again, saying why nothing was sent, with the status a script would get from the API.
                Response.StatusCode = StatusCodes.Status429TooManyRequests;
                Response.Headers.RetryAfter = RetryAfterSeconds(limited.RetryAfter);
            }
            await LoadAsync(me, ct);
            return Page();
        }
        // An admin who changed their own role goes on with the new one, rather than being signed out by the cookie check.
        if (id == me.Id && await users.FindByIdAsync(me.Id.ToString()) is { } self)
        {
            await signIn.RefreshSignInAsync(self);
            // No longer an admin: this page is not theirs any more.
            if (self.Role != TeamRole.Admin) return Redirect("/");
        }
        return RedirectToPage();
    }

    internal static string RetryAfterSeconds(TimeSpan wait) =>
        Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);

    static TeamRole? ParseRole(string? text) => text?.Trim() switch
    {
        "Member" => TeamRole.Member,
        "Admin" => TeamRole.Admin,
        _ => null,
    };

    async Task LoadAsync(CurrentUser me, CancellationToken ct)
    {
        MeId = me.Id;
        Now = clock.GetUtcNow();
        Team = await members.TeamAsync(me.TeamId, ct);
        Members = await members.ListAsync(me.TeamId, ct);
        MicrosoftAccounts = await members.MicrosoftAccountsAsync(me.TeamId, ct);
    }

    PageResult Refused()
    {
        AdminsOnly = true;
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return Page();
    }
}
