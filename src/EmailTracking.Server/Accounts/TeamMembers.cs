using System.Security.Cryptography;
using EmailTracking.Data;
using EmailTracking.Server.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Server.Accounts;

/// <summary>How a member can sign in now, as the Team page shows it.</summary>
public enum MemberAccess
{
    /// <summary>Web password, add-ins and API tokens.</summary>
    Active,
    /// <summary>No web password (made by `et users add` without one): the add-ins' Microsoft or Google sign-in and API tokens only.</summary>
    NoPassword,
    /// <summary>Password sign-in locked for a while after wrong passwords; the rest works.</summary>
    LockedForNow,
    /// <summary>Deactivated by an admin: no sign-in of any kind, no API token.</summary>
    Deactivated,
    /// <summary>Mailed an invitation that is still pending: they have not chosen a password yet, and its link still works.</summary>
    Invited,
    /// <summary>Mailed an invitation whose link expired before they chose a password: an admin sends it again.</summary>
    InvitationExpired,
    /// <summary>
    /// No password, no invitation on record, and never in by any way: not on the web, not by an add-in, no API token
    /// (which `et users add` always gives), nothing owned. Members invited before the invitation was recorded, and those
    /// whose invitation mail did not go: an admin sends it (again). Not "add-ins only", which they never chose.
    /// </summary>
    NotSignedInYet,
}

/// <summary>Where a member's invitation (<see cref="Invitations"/>) stands.</summary>
public enum InvitationState
{
    /// <summary>None was sent (a member made with a password, or by `et users add` without one), or a password was set since by other means.</summary>
    None,
    Pending,
    Expired,
    Accepted,
    /// <summary>Revoked by an admin while pending; the member was deactivated rather than removed, as they own data.</summary>
    Revoked,
}

/// <param name="LockedUntil">For <see cref="MemberAccess.LockedForNow"/>: when password sign-in opens again.</param>
/// <param name="LastSignIn">The member's last web sign-in with their password.</param>
/// <param name="LastApiUse">The last time one of the member's API tokens was used.</param>
/// <param name="MustChangePassword">Their password was set by someone else: they choose their own at their next sign-in.</param>
/// <param name="InvitedAt">For <see cref="MemberAccess.Invited"/> and <see cref="MemberAccess.InvitationExpired"/>: when the last invitation was mailed.</param>
/// <param name="InvitationExpiresAt">When that invitation's link stops (or stopped) working.</param>
public sealed record TeamMember(Guid Id, string Email, string? DisplayName, TeamRole Role, MemberAccess Access, DateTimeOffset? LockedUntil,
    DateTimeOffset CreatedAt, DateTimeOffset? LastSignIn, DateTimeOffset? LastApiUse, bool MustChangePassword,
    DateTimeOffset? InvitedAt = null, DateTimeOffset? InvitationExpiresAt = null)
{
    /// <summary>Where the member's last invitation stands (<see cref="TeamMembers.StateOf"/>), whatever their access.</summary>
    public InvitationState Invitation { get; init; }
}

/// <summary>The member an admin named is not in their team (or does not exist): the same answer either way.</summary>
public sealed class MemberNotFoundException() : AccountException("That member is not in your team.");

/// <summary>The change would leave the team without an admin who can sign in to the web app.</summary>
public sealed class LastAdminException(string email)
    : AccountException($"{email} is the team's only admin who can sign in: make another member an admin first.");

/// <summary>
/// A team's admins manage its members: add one (with a one-time initial password), change a role, deactivate and
/// reactivate. Every change is made in a transaction that holds the team (PostgreSQL: its row, FOR UPDATE; SQLite: the
/// one write transaction), so two admins acting at once cannot together leave the team without an admin who can sign in,
/// nor a Solo team with two members. The server's operator (`et users deactivate|reactivate`) makes the same changes,
/// with the same guards, on a member of any team.
/// </summary>
/// <remarks>
/// Deactivation is the administrator's lock the rest of the server already knows (<see cref="Auth.IsShut"/>): the cookie
/// check, API tokens, the live feed and the Outlook add-in's Microsoft sign-in all refuse it. The security stamp changes
/// too, so that nothing keyed on the old stamp outlives it. Nothing of the member's is deleted or moved: their messages,
/// events, tokens and mailboxes stay as they were, with the team, and work again on reactivation.
/// </remarks>
/// <para>
/// An invitation's times are kept on the member (<see cref="User.InvitedAt"/> and the rest) and measured by the clock
/// its link's token is (<see cref="PasswordResetOptions.ClockKey"/>), so that the page's "expires" is the link's.
/// </para>
public sealed class TeamMembers(AppDbContext db, UserManager<User> users, AccountService accounts, Invitations invitations, TimeProvider clock,
    [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider linkClock)
{
    /// <summary>The lock end that deactivates: far beyond any lock wrong passwords cause (Identity's convention).</summary>
    public static readonly DateTimeOffset DeactivatedUntil = new(9999, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public const int DisplayNameMax = 200;

    public async Task<Team> TeamAsync(Guid teamId, CancellationToken ct = default) =>
        await db.Teams.AsNoTracking().FirstAsync(t => t.Id == teamId, ct);

    /// <summary>Whether the member is in the team: the API answers another team's member, as one nobody has, before anything else.</summary>
    public Task<bool> InTeamAsync(Guid teamId, Guid memberId, CancellationToken ct = default) =>
        db.Users.AnyAsync(u => u.Id == memberId && u.TeamId == teamId, ct);

    /// <summary>The team's members: admins first, then by address.</summary>
    public async Task<List<TeamMember>> ListAsync(Guid teamId, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var rows = await db.Users.AsNoTracking().Where(u => u.TeamId == teamId)
            .Select(u => new
            {
                u.Id, u.Email, u.DisplayName, u.Role, u.LockoutEnd, HasPassword = u.PasswordHash != null, u.CreatedAt, u.LastSignInAt, u.MustChangePassword,
                u.InvitedAt, u.InvitationAcceptedAt, u.InvitationRevokedAt,
            })
            .ToListAsync(ct);
        var ids = rows.Select(r => r.Id).ToList();
        // Ordered and compared in memory: SQLite stores times as numbers (AppDbContext) and has no MAX over them in EF.
        var apiUse = (await db.ApiTokens.AsNoTracking().Where(t => ids.Contains(t.UserId) && t.LastUsedAt != null)
                .Select(t => new { t.UserId, t.LastUsedAt }).ToListAsync(ct))
            .GroupBy(t => t.UserId).ToDictionary(g => g.Key, g => g.Max(t => t.LastUsedAt));
        var linkNow = linkClock.GetUtcNow();
        // Those without a password and without an invitation on record who never signed in: did they ever come in at
        // all (an add-in, a token)? Asked as revoking an invitation asks, for all of them at once.
        var unsure = rows.Where(r => !r.HasPassword && r.LastSignInAt is null && r.InvitedAt is null && r.InvitationAcceptedAt is null && !apiUse.ContainsKey(r.Id))
            .Select(r => r.Id).ToList();
        var cameIn = unsure.Count == 0 ? [] : await SignedInOrOwnAsync(unsure, ct);
        var neverIn = unsure.Where(id => !cameIn.Contains(id)).ToHashSet();
        return [.. rows
            .Select(r =>
            {
                var invitation = StateOf(r.InvitedAt, r.InvitationAcceptedAt, r.InvitationRevokedAt, r.HasPassword, linkNow, invitations.Lifetime);
                var access = Auth.IsShut(r.LockoutEnd, now) ? MemberAccess.Deactivated
                    : invitation == InvitationState.Pending ? MemberAccess.Invited
                    : invitation == InvitationState.Expired ? MemberAccess.InvitationExpired
                    : neverIn.Contains(r.Id) ? MemberAccess.NotSignedInYet
                    : !r.HasPassword ? MemberAccess.NoPassword
                    : r.LockoutEnd > now ? MemberAccess.LockedForNow
                    : MemberAccess.Active;
                var invited = access is MemberAccess.Invited or MemberAccess.InvitationExpired;
                return new TeamMember(r.Id, r.Email ?? "", r.DisplayName, r.Role, access, access == MemberAccess.LockedForNow ? r.LockoutEnd : null,
                    r.CreatedAt, r.LastSignInAt, apiUse.GetValueOrDefault(r.Id), r.MustChangePassword,
                    invited ? r.InvitedAt : null, invited ? r.InvitedAt + invitations.Lifetime : null) { Invitation = invitation };
            })
            .OrderBy(m => m.Role == TeamRole.Admin ? 0 : 1).ThenBy(m => m.Email, StringComparer.Ordinal)];
    }

    /// <summary>
    /// Adds a member to the admin's team with a new initial password, returned for the admin to hand over (it is stored
    /// only as Identity's hash); or, with <paramref name="initialPassword"/> false, without one, for an invitation
    /// (<see cref="InviteAsync"/>) to let them choose theirs. Refused: not an address, an address any user already signs
    /// in with (in whichever team: the answer does not say), a Solo team that already has its one member.
    /// </summary>
    public async Task<(User Member, string? Password)> AddAsync(CurrentUser admin, string? email, string? displayName, TeamRole role,
        bool initialPassword = true, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        RequireRole(role);
        if (string.IsNullOrWhiteSpace(email)) throw new AccountException("Give the new member's email address.");
        if (AccountService.NormalizeAddress(email) is null) throw new AccountException($"'{email.Trim()}' is not an email address.");
        var name = Web.PlainText.OneLineOrNull(displayName)?.Trim();
        if (name is { Length: > DisplayNameMax }) throw new AccountException($"The display name is longer than {DisplayNameMax} characters.");

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var team = await HoldTeamAsync(admin.TeamId, ct);
        var password = initialPassword ? InitialPassword() : null;
        try
        {
            // The Solo plan's limit is AccountService's, for `et users add` too: said here as an admin needs it.
            var user = await accounts.CreateMemberAsync(team, email, string.IsNullOrEmpty(name) ? null : name, role, password, ct);
            await tx.CommitAsync(ct);
            return (user, password);
        }
        catch (SoloTeamFullException)
        {
            throw new AccountException("Your team is on the Solo plan, which has one member. Ask the server's operator to move it to the Team plan to add members.");
        }
    }

    /// <summary>Where an invitation stands, from the member's columns (<see cref="User.InvitedAt"/> and the rest): for the Team page and `et users list`.</summary>
    public static InvitationState StateOf(DateTimeOffset? invitedAt, DateTimeOffset? acceptedAt, DateTimeOffset? revokedAt, bool hasPassword,
        DateTimeOffset now, TimeSpan lifetime) =>
        acceptedAt is not null ? InvitationState.Accepted
        : revokedAt is not null ? InvitationState.Revoked
        // A password set by other means since (the operator's) ends the invitation: its link no longer works either.
        : invitedAt is null || hasPassword ? InvitationState.None
        : invitedAt + lifetime <= now ? InvitationState.Expired
        : InvitationState.Pending;

    /// <summary>
    /// Mails a member of the admin's team an invitation to choose their web password (<see cref="Invitations"/>): one
    /// added by invitation, again (the mail was lost, the link expired), or one made without a password. A member who
    /// has a password is refused (they use "Forgot your password?"), and so is a deactivated one. Sending again is
    /// limited (<see cref="TeamOptions"/>: a spacing per member, resends per member a day and per team an hour), so that
    /// an admin cannot flood anyone's mailbox: over a limit, <see cref="InvitationLimitException"/> and nothing sent.
    /// Throws <see cref="SystemMailException"/> when the relay does not take the mail. Once the mail is taken, the member's
    /// invitation is pending from now, sent by this admin (a revoked one is not, any more).
    /// </summary>
    public async Task<User> InviteAsync(CurrentUser admin, Guid memberId, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        if (!invitations.Offered) throw new AccountException("This server cannot send mail (Mail:Smtp and Tracking:PublicBaseUrl are not configured).");
        var member = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == memberId && u.TeamId == admin.TeamId, ct) ?? throw new MemberNotFoundException();
        if (Auth.IsShut(member.LockoutEnd, clock.GetUtcNow())) throw new AccountException($"{member.Email} is deactivated: reactivate them first.");
        if (member.PasswordHash is not null) throw new AccountException($"{member.Email} has chosen a password already: if they forgot it, they use \"Forgot your password?\" at sign-in.");
        var team = await TeamAsync(admin.TeamId, ct);
        var sent = await CountInvitationAsync(admin.TeamId, member, ct);
        try
        {
            await invitations.SendAsync(member, team.Name, admin.Email, ct);
        }
        catch (SystemMailException)
        {
            // Not sent: it does not count.
            db.InvitationMails.Remove(sent);
            await db.SaveChangesAsync(CancellationToken.None);
            throw;
        }
        var now = linkClock.GetUtcNow();
        // In place, as the sign-in's time is: the member row read above is not saved again over whatever changed since.
        await db.Users.Where(u => u.Id == member.Id).ExecuteUpdateAsync(s => s
            .SetProperty(u => u.InvitedAt, now).SetProperty(u => u.InvitedById, admin.Id).SetProperty(u => u.InvitationRevokedAt, (DateTimeOffset?)null), ct);
        return member;
    }

    /// <summary>The first key of the PostgreSQL advisory lock on a team's invitation mails (the second is from the team's id).</summary>
    const int InvitationLockClass = 7_262_005;

    /// <summary>
    /// Checks the limits on invitation mails (<see cref="TeamOptions"/>) and records this one, before it goes: one send
    /// of the team's at a time (SQLite: the write transaction, BEGIN IMMEDIATE; PostgreSQL: the team's advisory lock),
    /// committed before the mail goes, so that sends asked for at the same moment each count the others' rows and only
    /// one mail goes. Measured by the invitation's own clock (<see cref="PasswordResetOptions.ClockKey"/>), as its link is.
    /// </summary>
    async Task<InvitationMail> CountInvitationAsync(Guid teamId, User member, CancellationToken ct)
    {
        var o = invitations.Options;
        var now = linkClock.GetUtcNow();
        var day = TimeSpan.FromDays(1);
        var hour = TimeSpan.FromHours(1);
        await using var tx = await db.Database.BeginSerializedAsync(InvitationLockClass, teamId, ct);
        await db.InvitationMails.Where(m => m.TeamId == teamId && m.SentAt < now - day).ExecuteDeleteAsync(ct);
        var recent = await db.InvitationMails.Where(m => m.TeamId == teamId && m.SentAt > now - day)
            .Select(m => new { m.MemberId, m.SentAt, m.Resend }).ToListAsync(ct);
        var toMember = recent.Where(m => m.MemberId == member.Id).OrderBy(m => m.SentAt).ToList();
        if (toMember.Count > 0 && toMember[^1].SentAt + o.InvitationResendAfter > now)
        {
            throw new InvitationLimitException(
                $"An invitation went to {member.Email} less than {Web.PlainText.Duration(o.InvitationResendAfter)} ago: wait for it (they may look in spam too), or send it again later.",
                toMember[^1].SentAt + o.InvitationResendAfter - now);
        }
        // The first mail to a member is not a resend: a member added, or made without a password, is always mailed once.
        var resend = member.InvitedAt is not null || toMember.Count > 0;
        if (resend)
        {
            var resent = toMember.Where(m => m.Resend).Select(m => m.SentAt).ToList();
            if (resent.Count >= o.InvitationResendsPerDay)
            {
                throw new InvitationLimitException(
                    $"The invitation of {member.Email} was sent again {Times(resent.Count)} in the last 24 hours, the most this server allows: send it again later.",
                    resent[^o.InvitationResendsPerDay] + day - now);
            }
            var teamResent = recent.Where(m => m.Resend && m.SentAt > now - hour).Select(m => m.SentAt).Order().ToList();
            if (teamResent.Count >= o.InvitationResendsPerHour)
            {
                throw new InvitationLimitException(
                    $"Your team sent invitations again {Times(teamResent.Count)} in the last hour, the most this server allows: send this one again later.",
                    teamResent[^o.InvitationResendsPerHour] + hour - now);
            }
        }
        var row = new InvitationMail { TeamId = teamId, MemberId = member.Id, SentAt = now, Resend = resend };
        db.InvitationMails.Add(row);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return row;
    }

    static string Times(int n) => n == 1 ? "once" : n == 2 ? "twice" : $"{n} times";

    /// <summary>
    /// Revokes a pending (or expired) invitation: the member is removed when they never signed in and own nothing, so
    /// that the address can be invited again as new; otherwise (an add-in sign-in, an API token, messages, anything in
    /// <see cref="Owned"/>) they are deactivated instead, as <see cref="DeactivateAsync"/> does, and their data stays with
    /// the team. Either way the invitation's link stops working (no account, or a new security stamp). Refused for a
    /// member whose invitation is not pending: one who has a password is deactivated instead, if need be.
    /// </summary>
    public async Task<(string Email, bool Removed)> RevokeInvitationAsync(CurrentUser admin, Guid memberId, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await HoldTeamAsync(admin.TeamId, ct);
        var member = await MemberAsync(admin.TeamId, memberId, ct);
        var email = member.Email ?? "";
        if (Auth.IsShut(member.LockoutEnd, clock.GetUtcNow())) throw new AccountException($"{email} is deactivated: there is no invitation to revoke.");
        var state = StateOf(member.InvitedAt, member.InvitationAcceptedAt, member.InvitationRevokedAt, member.PasswordHash is not null,
            linkClock.GetUtcNow(), invitations.Lifetime);
        if (state is not (InvitationState.Pending or InvitationState.Expired))
        {
            throw new AccountException(member.PasswordHash is not null
                ? $"{email} has chosen a password already: there is no invitation to revoke. Deactivate them instead."
                : $"{email} has no pending invitation to revoke.");
        }
        if (member.LastSignInAt is null && !await SignedInOrOwnsAsync(member.Id, ct))
        {
            // Their addresses, confirmations and Identity rows go with them (cascades); nothing else names them.
            Check(await users.DeleteAsync(member));
            await tx.CommitAsync(ct);
            return (email, true);
        }
        if (member.Role == TeamRole.Admin && !await AnotherAdminCanSignInAsync(member, ct)) throw new LastAdminException(email);
        member.InvitationRevokedAt = linkClock.GetUtcNow();
        member.LockoutEnabled = true;
        member.LockoutEnd = DeactivatedUntil;
        Check(await users.UpdateSecurityStampAsync(member));
        await tx.CommitAsync(ct);
        return (email, false);
    }

    /// <summary>
    /// Every table whose rows belong to a user without a cascade from the user's row, as the users its rows name: a member
    /// with any of these is not removed (<see cref="RevokeInvitationAsync"/>). A test holds this list to the model, so a
    /// new table is not missed.
    /// </summary>
    public static readonly IReadOnlyList<(Type Entity, Func<AppDbContext, IQueryable<Guid>> Owners)> Owned =
    [
        (typeof(ApiToken), db => db.ApiTokens.Select(x => x.UserId)),
        (typeof(IdempotencyKey), db => db.IdempotencyKeys.Select(x => x.UserId)),
        (typeof(StagedAttachment), db => db.StagedAttachments.Select(x => x.UserId)),
        (typeof(MicrosoftAccountLink), db => db.MicrosoftAccountLinks.Select(x => x.UserId)),
        (typeof(TrackedMessage), db => db.Messages.Select(x => x.UserId)),
        (typeof(MessageCopy), db => db.Copies.Select(x => x.UserId)),
        (typeof(TrackingEvent), db => db.Events.Select(x => x.UserId)),
        (typeof(VerdictChange), db => db.VerdictChanges.Select(x => x.UserId)),
        (typeof(MailboxConnection), db => db.Mailboxes.Select(x => x.UserId)),
        (typeof(InboundMessage), db => db.InboundMessages.Select(x => x.UserId)),
        (typeof(UnreadableMessage), db => db.UnreadableMessages.Select(x => x.UserId)),
        (typeof(ContentItem), db => db.Contents.Select(x => x.UserId)),
        (typeof(ContentLink), db => db.ContentLinks.Select(x => x.UserId)),
        (typeof(DocumentVisit), db => db.DocumentVisits.Select(x => x.UserId)),
        (typeof(MailTemplate), db => db.Templates.Select(x => x.UserId)),
        (typeof(Sequence), db => db.Sequences.Select(x => x.UserId)),
        (typeof(Enrolment), db => db.Enrolments.Select(x => x.UserId)),
        (typeof(OutboxEvent), db => db.OutboxEvents.Select(x => x.UserId)),
        (typeof(SalesforceConnection), db => db.SalesforceConnections.Select(x => x.ConnectedByUserId)),
    ];

    /// <summary>
    /// Whether the member signed in by an add-in (a Microsoft account bound to them: any login but the verified-address
    /// one every account gets for its own email) or owns any row of <see cref="Owned"/>.
    /// </summary>
    async Task<bool> SignedInOrOwnsAsync(Guid memberId, CancellationToken ct) => (await SignedInOrOwnAsync([memberId], ct)).Count > 0;

    /// <summary>
    /// Those of the members who signed in by an add-in or own anything, as <see cref="SignedInOrOwnsAsync"/> asks of one:
    /// one query for the logins and one per table of <see cref="Owned"/>, however many members are asked about, each
    /// asking only about those not found yet.
    /// </summary>
    async Task<HashSet<Guid>> SignedInOrOwnAsync(IReadOnlyCollection<Guid> memberIds, CancellationToken ct)
    {
        var left = memberIds.ToList();
        var found = (await db.UserLogins.Where(l => left.Contains(l.UserId) && l.LoginProvider != AccountService.VerifiedAddressProvider)
            .Select(l => l.UserId).Distinct().ToListAsync(ct)).ToHashSet();
        foreach (var (_, owners) in Owned)
        {
            left = [.. left.Where(id => !found.Contains(id))];
            if (left.Count == 0) break;
            // The table's owners as a subquery (IN), which the database answers from its index on the user.
            var owning = owners(db);
            found.UnionWith(await db.Users.Where(u => left.Contains(u.Id) && owning.Contains(u.Id)).Select(u => u.Id).ToListAsync(ct));
        }
        return found;
    }

    /// <summary>Each member's Microsoft accounts (<see cref="Outlook.MicrosoftAccounts"/>), for the Team page.</summary>
    public async Task<Dictionary<Guid, List<Outlook.MicrosoftAccount>>> MicrosoftAccountsAsync(Guid teamId, CancellationToken ct = default) =>
        await Outlook.MicrosoftAccounts.OfAsync(db, await db.Users.Where(u => u.TeamId == teamId).Select(u => u.Id).ToListAsync(ct), ct);

    /// <summary>
    /// Forgets every Microsoft account of a member of the admin's team, as `et users unlink-microsoft` does
    /// (<see cref="Outlook.MicrosoftAccounts.UnlinkAllAsync"/>): the Outlook add-in signed in with them no longer signs in
    /// as the member, and the next account to sign in with the member's address is bound instead.
    /// </summary>
    public async Task<(string Email, int Removed)> UnlinkMicrosoftAsync(CurrentUser admin, Guid memberId, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        var email = await db.Users.Where(u => u.Id == memberId && u.TeamId == admin.TeamId).Select(u => u.Email).FirstOrDefaultAsync(ct)
            ?? throw new MemberNotFoundException();
        return (email, await Outlook.MicrosoftAccounts.UnlinkAllAsync(db, memberId, ct));
    }

    /// <summary>
    /// A role the enum defines: a number read as one (a command line's "--role 5") would be stored and shown as a role
    /// that does not exist, neither admin nor member.
    /// </summary>
    static void RequireRole(TeamRole role)
    {
        if (!Enum.IsDefined(role)) throw new AccountException($"{(int)role} is not a role: \"admin\" or \"member\".");
    }

    /// <summary>Changes a member's role. Their sessions sign in again with it at their next request (the cookie names the role).</summary>
    public async Task<User> SetRoleAsync(CurrentUser admin, Guid memberId, TeamRole role, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        return (await SetRoleInTeamAsync(admin.TeamId, memberId, role, ct)).Member;
    }

    /// <summary>
    /// The server's operator (`et users role`) changes any team's member's role, named by their sign-in address, with the
    /// Team page's guard (the team keeps an admin who can sign in). Changed is false when they had the role already.
    /// </summary>
    public async Task<(User Member, bool Changed)> SetRoleAsOperatorAsync(string email, TeamRole role, CancellationToken ct = default)
    {
        var user = await accounts.UserByEmailAsync(email, ct);
        return await SetRoleInTeamAsync(user.TeamId, user.Id, role, ct);
    }

    async Task<(User Member, bool Changed)> SetRoleInTeamAsync(Guid teamId, Guid memberId, TeamRole role, CancellationToken ct)
    {
        RequireRole(role);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await HoldTeamAsync(teamId, ct);
        var member = await MemberAsync(teamId, memberId, ct);
        if (member.Role == role) return (member, false);
        if (member.Role == TeamRole.Admin && !await AnotherAdminCanSignInAsync(member, ct)) throw new LastAdminException(member.Email ?? "");
        member.Role = role;
        Check(await users.UpdateAsync(member));
        await tx.CommitAsync(ct);
        return (member, true);
    }

    /// <summary>
    /// Deactivates a member: every way in closes at once (web sessions at their next request, API tokens, live feeds,
    /// the add-ins), and their data stays with the team. An admin cannot deactivate themselves, nor the last admin who
    /// can sign in.
    /// </summary>
    public async Task<User> DeactivateAsync(CurrentUser admin, Guid memberId, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        if (memberId == admin.Id) throw new AccountException("You cannot deactivate yourself: another admin of the team can.");
        return (await DeactivateInTeamAsync(admin.TeamId, memberId, ct)).Member;
    }

    /// <summary>Lets a deactivated member in again: their password, tokens and mailboxes work as before.</summary>
    public async Task<User> ReactivateAsync(CurrentUser admin, Guid memberId, CancellationToken ct = default)
    {
        RequireAdmin(admin);
        return (await ReactivateInTeamAsync(admin.TeamId, memberId, ct)).Member;
    }

    /// <summary>
    /// The server's operator (`et users deactivate`) deactivates any team's member, named by their sign-in address:
    /// the same change as an admin's, with the same guard (not the team's last admin who can sign in). Changed is
    /// false when they were deactivated already.
    /// </summary>
    public async Task<(User Member, bool Changed)> DeactivateAsOperatorAsync(string email, CancellationToken ct = default)
    {
        var user = await accounts.UserByEmailAsync(email, ct);
        return await DeactivateInTeamAsync(user.TeamId, user.Id, ct);
    }

    /// <summary>The server's operator (`et users reactivate`) lets a deactivated member in again, as an admin would.</summary>
    public async Task<(User Member, bool Changed)> ReactivateAsOperatorAsync(string email, CancellationToken ct = default)
    {
        var user = await accounts.UserByEmailAsync(email, ct);
        return await ReactivateInTeamAsync(user.TeamId, user.Id, ct);
    }

    async Task<(User Member, bool Changed)> DeactivateInTeamAsync(Guid teamId, Guid memberId, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await HoldTeamAsync(teamId, ct);
        var member = await MemberAsync(teamId, memberId, ct);
        if (Auth.IsShut(member.LockoutEnd, clock.GetUtcNow())) return (member, false);
        if (member.Role == TeamRole.Admin && !await AnotherAdminCanSignInAsync(member, ct)) throw new LastAdminException(member.Email ?? "");
        member.LockoutEnabled = true;
        member.LockoutEnd = DeactivatedUntil;
        // The new stamp ends a pending invitation's link too: said so, rather than shown pending again on reactivation.
        if (member.PasswordHash is null && member.InvitedAt is not null && member.InvitationAcceptedAt is null) member.InvitationRevokedAt ??= linkClock.GetUtcNow();
        // A new stamp as well as the lock: whatever compares stamps (the cookie check, open live feeds) lets go at once.
        Check(await users.UpdateSecurityStampAsync(member));
        await tx.CommitAsync(ct);
        return (member, true);
    }

    async Task<(User Member, bool Changed)> ReactivateInTeamAsync(Guid teamId, Guid memberId, CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await HoldTeamAsync(teamId, ct);
        var member = await MemberAsync(teamId, memberId, ct);
        if (!Auth.IsShut(member.LockoutEnd, clock.GetUtcNow())) return (member, false);
        member.LockoutEnd = null;
        member.AccessFailedCount = 0;
        Check(await users.UpdateAsync(member));
        await tx.CommitAsync(ct);
        return (member, true);
    }

    static void RequireAdmin(CurrentUser admin)
    {
        if (!admin.IsAdmin) throw new UnauthorizedAccessException("Only a team admin manages its members.");
    }

    static void Check(IdentityResult result)
    {
        if (!result.Succeeded) throw new AccountException(string.Join(" ", result.Errors.Select(e => e.Description)));
    }

    /// <summary>The team's row, held for the rest of the transaction (PostgreSQL; SQLite's write transaction holds the whole database).</summary>
    async Task<Team> HoldTeamAsync(Guid teamId, CancellationToken ct)
    {
        if (db.Database.IsNpgsql())
        {
            return await db.Teams.FromSqlInterpolated($"SELECT * FROM \"Teams\" WHERE \"Id\" = {teamId} FOR UPDATE").FirstAsync(ct);
        }
        return await db.Teams.FirstAsync(t => t.Id == teamId, ct);
    }

    async Task<User> MemberAsync(Guid teamId, Guid memberId, CancellationToken ct) =>
        await db.Users.FirstOrDefaultAsync(u => u.Id == memberId && u.TeamId == teamId, ct) ?? throw new MemberNotFoundException();

    /// <summary>
    /// Whether an admin of the team other than <paramref name="member"/> can still sign in to the web app: not
    /// deactivated, and with a password (one without can reach neither this page nor any other).
    /// </summary>
    async Task<bool> AnotherAdminCanSignInAsync(User member, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var others = await db.Users.Where(u => u.TeamId == member.TeamId && u.Id != member.Id && u.Role == TeamRole.Admin && u.PasswordHash != null)
            .Select(u => u.LockoutEnd).ToListAsync(ct);
        return others.Any(end => !Auth.IsShut(end, now));
    }

    /// <summary>
    /// A password for the admin to hand over, meeting Identity's rules (Auth.AddAccounts): 16 characters from letters
    /// and digits that are not easily misread (no 0/O, 1/l/I), with at least one upper, one lower and one digit.
    /// </summary>
    public static string InitialPassword()
    {
        const string upper = "ABCDEFGHJKLMNPQRSTUVWXYZ", lower = "abcdefghijkmnopqrstuvwxyz", digits = "23456789";
        while (true)
        {
            var chars = RandomNumberGenerator.GetItems<char>(upper + lower + digits, 16);
            if (chars.Any(upper.Contains) && chars.Any(lower.Contains) && chars.Any(digits.Contains)) return new string(chars);
        }
    }
}
