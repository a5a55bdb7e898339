using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Outlook;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// The Team page's member management for scripts (<see cref="TeamMembers"/>, with its guards): a team admin lists the
/// members (with their Microsoft accounts), invites one by mail, changes a role, deactivates, reactivates, sends or
/// revokes an invitation, and unlinks a member's Microsoft accounts. Members
/// are told it is for admins (403); another team's member is not found (404), as one that does not exist.
/// </summary>
/// <remarks>
/// The API never hands out a password or a link that sets one: a member is added only by the invitation mail, which goes
/// to the member's own address, so a server without mail (where the Team page shows an initial password) refuses to
/// add one here. And the Outlook add-in's Microsoft access token, which the add-in gets silently for whoever opens
/// Outlook, is refused with 403 (<see cref="AddinRefusedReason"/>): a pane, or a page framed in it, manages no members.
/// Personal API tokens (made by the user, on purpose) and the web app's cookie (with the cross-site header) are taken.
/// </remarks>
public static class TeamApi
{
    public sealed record MemberAddress(string Address, AddressState State);

    /// <summary>A Microsoft account that signs the member in to the Outlook add-in, as the Team page lists it.</summary>
    /// <param name="DisplayName">Null (as are <paramref name="SignInName"/> and <paramref name="LinkedAt"/>) for the
    /// account bound at the member's first add-in sign-in by their address: only its ids are kept.</param>
    public sealed record MemberMicrosoftAccount(string TenantId, string ObjectId, string? DisplayName, string? SignInName, DateTimeOffset? LinkedAt);

    /// <param name="Active">False when an admin deactivated the member (<see cref="MemberAccess.Deactivated"/>).</param>
    /// <param name="Access">How the member can sign in now, as the Team page shows it.</param>
    /// <param name="Invitation">Where their last invitation stands: none, pending, expired, accepted or revoked.</param>
    /// <param name="MicrosoftAccounts">The accounts the Outlook add-in signs in as the member with (none when empty).</param>
    public sealed record MemberView(Guid Id, string Email, string? DisplayName, TeamRole Role, bool Active, MemberAccess Access, InvitationState Invitation,
        DateTimeOffset? InvitedAt, DateTimeOffset? InvitationExpiresAt, DateTimeOffset? LockedUntil, bool MustChangePassword,
        DateTimeOffset CreatedAt, DateTimeOffset? LastSignIn, DateTimeOffset? LastApiUse, List<MemberAddress> Addresses,
        List<MemberMicrosoftAccount> MicrosoftAccounts);

    public sealed record InviteRequest(string? Email, string? DisplayName, TeamRole? Role);
    public sealed record RoleRequest(TeamRole? Role);
    public sealed record RevokedInvitation(Guid Id, string Email, bool Removed);

    /// <summary>The <c>reason</c> of the 403 an add-in's Microsoft token gets.</summary>
    public const string AddinRefusedReason = "addin-token";

    /// <summary>
    /// The 403 (<see cref="AddinRefusedReason"/>) for a request made with the Outlook add-in's Microsoft token, or null for
    /// any other sign-in. For what must outlive no token the add-in holds: the add-in gets it silently for whoever opens
    /// Outlook, and what it set up (a member, a personal token, a webhook, a Salesforce connection) would stay after the
    /// token ran out and after the account was unlinked.
    /// </summary>
    public static ProblemHttpResult? AddinRefusal(HttpContext http, string title, string detail) =>
        http.User.Identity?.AuthenticationType == MicrosoftSignIn.SchemeName
            ? TypedResults.Problem(statusCode: 403, title: title, detail: detail, extensions: new Dictionary<string, object?> { ["reason"] = AddinRefusedReason })
            : null;

    public const string AdminsOnlyText = "Only a team admin can manage the team's members.";

    public static void MapTeam(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/team/members").RequireAuthorization(Auth.ApiPolicy).WithTags("Team");
        g.MapGet("/", List).WithSummary("The team's members (admins): role, whether active, how they sign in, their invitation and addresses")
            .Produces<List<MemberView>>().ProducesProblem(403);
        g.MapPost("/", Invite)
            .WithSummary("Add a member and mail them an invitation to choose their password (admins). No password is ever answered: a server without mail refuses (503)")
            .Produces<MemberView>(201).ProducesProblem(400).ProducesProblem(403).ProducesProblem(502).ProducesProblem(503);
        g.MapPatch("/{id:guid}", SetRole).WithSummary("Change a member's role (admins); the team keeps an admin who can sign in (409)")
            .Produces<MemberView>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409);
        g.MapPost("/{id:guid}/deactivate", Deactivate)
            .WithSummary("Deactivate a member (admins): every sign-in, token, feed and add-in stops; their data stays. Not oneself, nor the last admin who can sign in (409)")
            .Produces<MemberView>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409);
        g.MapPost("/{id:guid}/reactivate", Reactivate).WithSummary("Let a deactivated member in again (admins)")
            .Produces<MemberView>().ProducesProblem(403).ProducesProblem(404);
        g.MapPost("/{id:guid}/invitation", SendInvitation)
            .WithSummary("Mail a member without a password an invitation again (a lost mail, an expired link, a member made without one) (admins); " +
                         "limited per member and per team (429 with Retry-After, nothing sent)")
            .Produces<MemberView>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(429).ProducesProblem(502).ProducesProblem(503);
        g.MapDelete("/{id:guid}/invitation", RevokeInvitation)
            .WithSummary("Revoke a pending invitation (admins): its link stops; the member is removed if they never signed in and own nothing, else deactivated")
            .Produces<RevokedInvitation>().ProducesProblem(400).ProducesProblem(403).ProducesProblem(404).ProducesProblem(409);
        g.MapDelete("/{id:guid}/microsoft-accounts", UnlinkMicrosoft)
            .WithSummary("Unlink every Microsoft account of a member (admins), as the Team page does: the Outlook add-in no longer signs in as them with " +
                         "those, and the next account to sign in with the member's address is bound instead")
            .Produces<MemberView>().ProducesProblem(403).ProducesProblem(404);
    }

    /// <summary>The admin asking, or the 403 a member or an add-in's token gets.</summary>
    static (CurrentUser? Admin, IResult? Refusal) Admin(HttpContext http)
    {
        if (AddinRefusal(http, "Members are not managed from the Outlook add-in.",
                "Use the web app's Team page, or a personal API token (Authorization: Bearer et_…) made on its API tokens page.") is { } refused)
        {
            return (null, refused);
        }
        var me = CurrentUser.Required(http.User);
        return me.IsAdmin ? (me, null) : (null, TypedResults.Problem(statusCode: 403, title: AdminsOnlyText));
    }

    static async Task<List<MemberView>> ViewsAsync(CurrentUser admin, TeamMembers members, AccountService accounts, Guid? only, CancellationToken ct)
    {
        var views = new List<MemberView>();
        // The whole team's Microsoft accounts in one look, as the Team page reads them.
        var microsoft = await members.MicrosoftAccountsAsync(admin.TeamId, ct);
        var team = (await members.ListAsync(admin.TeamId, ct)).Where(m => only is not { } id || m.Id == id).ToList();
        // Every member's addresses in one look too: a fixed number of queries, however large the team.
        var addressesOf = await accounts.AddressesAsync([.. team.Select(m => m.Id)], ct);
        foreach (var m in team)
        {
            var addresses = addressesOf.GetValueOrDefault(m.Id, []).Select(a => new MemberAddress(a.Address, a.State)).ToList();
            var linked = microsoft.GetValueOrDefault(m.Id, [])
                .Select(a => new MemberMicrosoftAccount(a.TenantId, a.ObjectId, a.DisplayName, a.SignInName, a.LinkedAt)).ToList();
            views.Add(new MemberView(m.Id, m.Email, m.DisplayName, m.Role, m.Access != MemberAccess.Deactivated, m.Access, m.Invitation,
                m.InvitedAt, m.InvitationExpiresAt, m.LockedUntil, m.MustChangePassword, m.CreatedAt, m.LastSignIn, m.LastApiUse, addresses, linked));
        }
        return views;
    }

    static async Task<IResult> ViewAsync(CurrentUser admin, TeamMembers members, AccountService accounts, Guid id, CancellationToken ct) =>
        (await ViewsAsync(admin, members, accounts, id, ct)).FirstOrDefault() is { } view ? TypedResults.Ok(view) : TypedResults.NotFound();

    static async Task<IResult> List(HttpContext http, TeamMembers members, AccountService accounts, CancellationToken ct)
    {
        var (me, refusal) = Admin(http);
        if (me is null) return refusal!;
        return TypedResults.Ok(await ViewsAsync(me, members, accounts, null, ct));
    }

    static async Task<IResult> Invite(InviteRequest? request, HttpContext http, TeamMembers members, AccountService accounts, Invitations invitations,
        CancellationToken ct)
    {
        var (me, refusal) = Admin(http);
        if (me is null) return refusal!;
        // Checked first, so that nothing is added: the Team page's other way, an initial password, is not the API's.
        if (!invitations.Offered) return NoMail();
        User member;
        try
        {
            (member, _) = await members.AddAsync(me, request?.Email, request?.DisplayName, request?.Role ?? TeamRole.Member, initialPassword: false, ct);
        }
        catch (AccountException ex)
        {
            return TypedResults.Problem(statusCode: 400, title: "The member cannot be added.", detail: ex.Message);
        }
        try
        {
            await members.InviteAsync(me, member.Id, ct);
        }
        catch (SystemMailException ex)
        {
            // Added all the same (without a password), as on the Team page: the invitation is sent again later.
            return TypedResults.Problem(statusCode: 502, title: "The member was added, but the invitation mail did not go.",
                detail: $"{ex.Message} Send it again with POST /api/team/members/{member.Id}/invitation.",
                extensions: new Dictionary<string, object?> { ["memberId"] = member.Id });
        }
        var view = (await ViewsAsync(me, members, accounts, member.Id, ct)).Single();
        return TypedResults.Created($"/api/team/members/{member.Id}", view);
    }

    static ProblemHttpResult NoMail() => TypedResults.Problem(statusCode: 503, title: "This server cannot mail invitations.",
        detail: "Mail:Smtp and Tracking:PublicBaseUrl are not configured. The API never hands out passwords: add the member on the web app's Team page, " +
                "which shows an initial password to hand over.");

    static Task<IResult> SetRole(Guid id, RoleRequest? request, HttpContext http, TeamMembers members, AccountService accounts, CancellationToken ct) =>
        ChangeAsync(http, id, members, accounts, async me =>
        {
            if (!await members.InTeamAsync(me.TeamId, id, ct)) throw new MemberNotFoundException();
            if (request?.Role is not { } role) throw new AccountException("role (\"admin\" or \"member\") is required.");
            await members.SetRoleAsync(me, id, role, ct);
        }, ct);

    static Task<IResult> Deactivate(Guid id, HttpContext http, TeamMembers members, AccountService accounts, MailboxWatcher watcher, CancellationToken ct) =>
        ChangeAsync(http, id, members, accounts, async me =>
        {
            await members.DeactivateAsync(me, id, ct);
            // Their mailboxes' watches stop now rather than at the watcher's next look.
            watcher.Wake();
        }, ct);

    static Task<IResult> Reactivate(Guid id, HttpContext http, TeamMembers members, AccountService accounts, MailboxWatcher watcher, CancellationToken ct) =>
        ChangeAsync(http, id, members, accounts, async me =>
        {
            await members.ReactivateAsync(me, id, ct);
            watcher.Wake();
        }, ct);

    static async Task<IResult> SendInvitation(Guid id, HttpContext http, TeamMembers members, AccountService accounts, Invitations invitations, CancellationToken ct)
    {
        var (me, refusal) = Admin(http);
        if (me is null) return refusal!;
        if (!await members.InTeamAsync(me.TeamId, id, ct)) return TypedResults.NotFound();
        if (!invitations.Offered) return NoMail();
        try
        {
            return await ChangeAsync(http, id, members, accounts, me => members.InviteAsync(me, id, ct), ct);
        }
        catch (SystemMailException ex)
        {
            return TypedResults.Problem(statusCode: 502, title: "The invitation mail could not be sent.", detail: ex.Message);
        }
    }

    static async Task<IResult> RevokeInvitation(Guid id, HttpContext http, TeamMembers members, MailboxWatcher watcher, CancellationToken ct)
    {
        var (me, refusal) = Admin(http);
        if (me is null) return refusal!;
        try
        {
            var (email, removed) = await members.RevokeInvitationAsync(me, id, ct);
            if (!removed) watcher.Wake();
            return TypedResults.Ok(new RevokedInvitation(id, email, removed));
        }
        catch (AccountException ex)
        {
            return Refusal(ex);
        }
    }

    static Task<IResult> UnlinkMicrosoft(Guid id, HttpContext http, TeamMembers members, AccountService accounts, CancellationToken ct) =>
        ChangeAsync(http, id, members, accounts, me => members.UnlinkMicrosoftAsync(me, id, ct), ct);

    /// <summary>Makes the change as the admin, answering the member as they are now; a refusal is a problem saying why.</summary>
    static async Task<IResult> ChangeAsync(HttpContext http, Guid id, TeamMembers members, AccountService accounts, Func<CurrentUser, Task> change, CancellationToken ct)
    {
        var (me, refusal) = Admin(http);
        if (me is null) return refusal!;
        try
        {
            await change(me);
        }
        catch (InvitationLimitException ex)
        {
            http.Response.Headers.RetryAfter = Pages.TeamModel.RetryAfterSeconds(ex.RetryAfter);
            return TypedResults.Problem(statusCode: 429, title: "Too many invitation mails.", detail: ex.Message,
                extensions: new Dictionary<string, object?> { ["retryAfter"] = (int)Math.Ceiling(ex.RetryAfter.TotalSeconds) });
        }
        catch (AccountException ex)
        {
            return Refusal(ex);
        }
        return await ViewAsync(me, members, accounts, id, ct);
    }

    static IResult Refusal(Exception ex) => ex switch
    {
        MemberNotFoundException => TypedResults.NotFound(),
        LastAdminException => TypedResults.Problem(statusCode: 409, title: "The team would have no admin who can sign in.", detail: ex.Message),
        _ => TypedResults.Problem(statusCode: 400, title: "The change cannot be made.", detail: ex.Message),
    };
}
