using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EmailTracking.Tests.Web;

/// <summary>
/// With a relay and a public base URL, "Add member" mails the new member a link to choose their own password (no
/// initial password is shown); the link opens the invitation's own page, naming the team and the admin, and works once,
/// within its lifetime; accepting signs the member in. Until then the Team page shows the invitation pending (or
/// expired), and the admin can send it again or revoke it; a link that no longer works says why.
/// </summary>
public abstract class TeamInvitationTests(PasswordResetApp app)
{
    const string Password = "Correct-horse-battery-9";
    const string Chosen = "Chosen-by-the-member-7";

    HttpClient Browser() => app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    async Task<HttpClient> SignedInAsync(string email, string password = Password)
    {
        var client = Browser();
        Assert.Equal(HttpStatusCode.Redirect, (await SignInTests.PostLoginAsync(client, new() { ["Email"] = email, ["Password"] = password })).StatusCode);
        return client;
    }

    static string Antiforgery(string page) => Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;

    static async Task<HttpResponseMessage> PostAsync(HttpClient client, string url, Dictionary<string, string> fields)
    {
        fields["__RequestVerificationToken"] = Antiforgery(await client.GetStringAsync("/login"));
        return await client.PostAsync(url, new FormUrlEncodedContent(fields));
    }

    static Task<HttpResponseMessage> AddAsync(HttpClient admin, string email) =>
        PostAsync(admin, "/team?handler=Add", new() { ["Email"] = email, ["DisplayName"] = "", ["Role"] = "Member" });

    static Task<HttpResponseMessage> InviteAsync(HttpClient admin, Guid id) => PostAsync(admin, $"/team?handler=Invite&id={id}", []);

    static Task<HttpResponseMessage> RevokeAsync(HttpClient admin, Guid id) => PostAsync(admin, $"/team?handler=Revoke&id={id}", []);

    Task<MimeMessage> MailAsync(string address, int count = 1) => app.Relay.MailAsync(address, count);

    static string LinkIn(MimeMessage mail)
    {
        var path = Regex.Match(mail.TextBody ?? "", @"http://localhost(/accept-invitation\?u=[0-9a-f]{32}&t=[^&\s]+)\s").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(path), "no invitation link in the mail:\n" + mail.TextBody);
        return path;
    }

    /// <summary>
    /// The invitation's own page: the mail's link itself, and where a link mailed before that page existed (on the reset
    /// page's path, with <c>k=invite</c>) leads, the token untouched.
    /// </summary>
    static async Task<string> AcceptPageAsync(HttpClient browser, string link)
    {
        Assert.StartsWith("/accept-invitation?", link);
        var old = "/reset-password?" + link["/accept-invitation?".Length..] + "&k=invite";
        var res = await browser.GetAsync(old);
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var to = res.Headers.Location!.OriginalString;
        Assert.StartsWith("/accept-invitation?", to);
        var from = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + old).Query);
        var query = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + to).Query);
        Assert.Equal(from["u"], query["u"]);
        Assert.Equal(from["t"], query["t"]);
        Assert.Equal(link, to);
        return link;
    }

    /// <summary>Chooses the password on the invitation's page: a redirect (signed in) when accepted, else the page.</summary>
    static async Task<HttpResponseMessage> ChooseAsync(HttpClient browser, string acceptPath, string password)
    {
        var query = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + acceptPath).Query);
        return await PostAsync(browser, "/accept-invitation", new()
        {
            ["u"] = query["u"] ?? "", ["t"] = query["t"] ?? "", ["New"] = password, ["Confirm"] = password,
        });
    }

    static async Task<string> TextAsync(HttpResponseMessage res) => WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());

    /// <summary>The member's row on the Team page.</summary>
    static string RowOf(string page, string email) =>
        Regex.Match(page, $"<tr data-member=\"{Regex.Escape(email)}\".*?</tr>", RegexOptions.Singleline).Value;

    static string NewAddress() => $"inv{Guid.NewGuid():N}"[..14] + "@sender.test";

    User Row(string email) => app.WithDb(db => db.Users.AsNoTracking().Single(u => u.Email == email));

    [Fact]
    public async Task An_added_member_is_mailed_a_link_to_choose_their_password_that_works_once()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var adminUser = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var admin = await SignedInAsync(adminUser.Email);
        Assert.Contains("id=\"invite-hint\"", await admin.GetStringAsync("/team"));
        var email = NewAddress();

        var res = await AddAsync(admin, email);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = await res.Content.ReadAsStringAsync();
        Assert.Contains($"{email} was added and mailed an invitation", html);
        Assert.DoesNotContain("new-password", html);
        Assert.Null(Row(email).PasswordHash);

        var mail = await MailAsync(email);
        Assert.Contains(adminUser.Email, mail.TextBody);
        Assert.Contains(team, mail.Subject);
        Assert.Contains("works once, for 7 days", mail.TextBody);
        var path = LinkIn(mail);
        // Pending on the Team page, with when it was sent and when its link stops.
        var sent = app.Clock.GetUtcNow();
        var row = RowOf(await admin.GetStringAsync("/team"), email);
        Assert.Contains("data-access=\"Invited\"", row);
        Assert.Matches("Invited <time[^>]*>[^<]+</time> · expires <time[^>]*>[^<]+</time>", row);
        Assert.Contains($"datetime=\"{(sent + TimeSpan.FromDays(7)).UtcDateTime:yyyy-MM-ddTHH:mm}", row);
        Assert.Contains(">Resend invitation<", row);
        Assert.Contains("class=\"revoke\"", row);
        Assert.Equal(adminUser.Id, Row(email).InvitedById);

        var browser = Browser();
        var acceptPath = await AcceptPageAsync(browser, path);
        var form = await browser.GetAsync(acceptPath);
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        var formText = await TextAsync(form);
        Assert.Contains("data-state=\"Ready\"", formText);
        // Each name isolated from the page's words, the invitee's address shown exactly (Display.Isolated, Display.Exact).
        Assert.Contains($"<b><bdi>{adminUser.Email}</bdi></b> invited <b><bdi class=\"exact\">{email}</bdi></b> to the team <b><bdi>{team}</bdi></b>", formText);
        // Opening it sets nothing.
        Assert.Null(Row(email).PasswordHash);
        // Not a reset link: the same token on the reset page without the invitation's kind does not work.
        Assert.Equal(HttpStatusCode.BadRequest, (await browser.GetAsync(path.Replace("/accept-invitation?", "/reset-password?", StringComparison.Ordinal))).StatusCode);

        // The password rules are the reset's, and a refused one changes nothing.
        var weak = await ChooseAsync(browser, acceptPath, "short");
        Assert.Equal(HttpStatusCode.BadRequest, weak.StatusCode);
        Assert.Contains("Passwords must be at least 10 characters", await TextAsync(weak));
        Assert.Null(Row(email).PasswordHash);

        // Accepting signs in, here and now, and is recorded.
        var done = await ChooseAsync(browser, acceptPath, Chosen);
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Equal("/", done.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/tokens")).StatusCode);
        var accepted = Row(email);
        Assert.NotNull(accepted.InvitationAcceptedAt);
        Assert.NotNull(accepted.LastSignInAt);
        Assert.Contains("data-access=\"Active\"", RowOf(await admin.GetStringAsync("/team"), email));
        var member = await SignedInAsync(email, Chosen);
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync("/tokens")).StatusCode);

        // Once: the link then says it was used, and offers sign-in.
        var again = await Browser().GetAsync(acceptPath);
        Assert.Equal(HttpStatusCode.Gone, again.StatusCode);
        var againText = await TextAsync(again);
        Assert.Contains("This invitation was already used", againText);
        Assert.Contains("href=\"/login\"", againText);
        Assert.DoesNotContain(team, againText);
        Assert.Equal(HttpStatusCode.Gone, (await ChooseAsync(Browser(), acceptPath, "Another-password-8")).StatusCode);
        await SignedInAsync(email, Chosen);
        // Nor is another invitation sent to a member who has a password.
        Assert.Contains("has chosen a password already", WebUtility.HtmlDecode(await (await InviteAsync(admin, Row(email).Id)).Content.ReadAsStringAsync()));
        Assert.Single(app.Relay.To(email));
    }

    [Fact]
    public async Task An_invitation_the_relay_refused_is_sent_again_and_an_expired_link_is_refused()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var adminUser = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var admin = await SignedInAsync(adminUser.Email);
        var email = NewAddress();

        app.Relay.Refuse = true;
        string html;
        try
        {
            html = WebUtility.HtmlDecode(await (await AddAsync(admin, email)).Content.ReadAsStringAsync());
        }
        finally
        {
            app.Relay.Refuse = false;
        }
        // Added all the same, without a password, and the admin is told to send the mail again.
        Assert.Contains($"{email} was added, but the invitation mail did not go.", html);
        Assert.Contains("Then use Resend invitation in the list.", html);
        var id = Row(email).Id;
        var list = await admin.GetStringAsync("/team");
        Assert.Contains($"data-member=\"{email}\" data-access=\"NotSignedInYet\"", list);
        Assert.Contains(">Resend invitation<", RowOf(list, email));
        Assert.Matches($"<form [^>]*action=\"/team\\?[^\"]*handler=Invite[^\"]*\"", list);
        Assert.Matches($"<form [^>]*action=\"/team\\?[^\"]*{id}[^\"]*\"[^>]*class=\"invite\"|<form [^>]*class=\"invite\"[^>]*action=\"/team\\?[^\"]*{id}", list);

        Assert.Equal(HttpStatusCode.Redirect, (await InviteAsync(admin, id)).StatusCode);
        var afterSend = await admin.GetStringAsync("/team");
        Assert.Contains($"An invitation was mailed to {email}", afterSend);
        Assert.Contains("data-access=\"Invited\"", RowOf(afterSend, email));
        var firstBrowser = Browser();
        var first = await AcceptPageAsync(firstBrowser, LinkIn(await MailAsync(email)));

        // Past its lifetime the link is refused with a page that says so, and the Team page says it too.
        app.Clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(1));
        var expired = await firstBrowser.GetAsync(first);
        Assert.Equal(HttpStatusCode.Gone, expired.StatusCode);
        var expiredText = await TextAsync(expired);
        Assert.Contains("This invitation has expired: its link worked for 7 days.", expiredText);
        Assert.Contains("An admin of your team can send you a new invitation", expiredText);
        Assert.DoesNotContain(team, expiredText);
        Assert.Equal(HttpStatusCode.Gone, (await ChooseAsync(firstBrowser, first, Chosen)).StatusCode);
        Assert.Null(Row(email).PasswordHash);
        var expiredRow = RowOf(await admin.GetStringAsync("/team"), email);
        Assert.Contains("data-access=\"InvitationExpired\"", expiredRow);
        Assert.Contains("invitation expired", expiredRow);
        Assert.Contains(">Resend invitation<", expiredRow);

        // Resent, the new link works; the old one, expired, points to the newer mail.
        Assert.Equal(HttpStatusCode.Redirect, (await InviteAsync(admin, id)).StatusCode);
        Assert.Contains("data-access=\"Invited\"", RowOf(await admin.GetStringAsync("/team"), email));
        var stale = await TextAsync(await Browser().GetAsync(first));
        Assert.Contains("A newer invitation was sent on", stale);
        var second = await AcceptPageAsync(Browser(), LinkIn(await MailAsync(email, 2)));
        Assert.Equal(HttpStatusCode.Redirect, (await ChooseAsync(Browser(), second, Chosen)).StatusCode);
        await SignedInAsync(email, Chosen);

        // A member of another team is not found.
        var stranger = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await InviteAsync(admin, stranger.Id)).StatusCode);
    }

    [Fact]
    public async Task Revoking_a_pending_invitation_removes_the_member_and_its_link_says_it_was_revoked()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var adminUser = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var admin = await SignedInAsync(adminUser.Email);
        var email = NewAddress();
        Assert.Equal(HttpStatusCode.OK, (await AddAsync(admin, email)).StatusCode);
        var id = Row(email).Id;
        var link = LinkIn(await MailAsync(email));
        var acceptPath = await AcceptPageAsync(Browser(), link);
        // The button asks before it acts.
        Assert.Matches("<form [^>]*class=\"revoke\" data-confirm=\"Revoke the invitation of [^\"]+\"", RowOf(await admin.GetStringAsync("/team"), email));

        var res = await RevokeAsync(admin, id);
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var page = await admin.GetStringAsync("/team");
        Assert.Contains($"The invitation of {email} is revoked and they are removed from the team", WebUtility.HtmlDecode(page));
        Assert.DoesNotContain($"data-member=\"{email}\"", page);
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Id == id)));

        // The old link says the invitation was revoked, and sets nothing.
        var refused = await Browser().GetAsync(acceptPath);
        Assert.Equal(HttpStatusCode.Gone, refused.StatusCode);
        var refusedText = await TextAsync(refused);
        Assert.Contains("This invitation was revoked by an admin of the team", refusedText);
        Assert.Contains("they can invite you again", refusedText);
        Assert.Equal(HttpStatusCode.Gone, (await ChooseAsync(Browser(), acceptPath, Chosen)).StatusCode);
        // The mail's link as it was mailed leads to the same page.
        Assert.Equal(acceptPath, await AcceptPageAsync(Browser(), link));

        // The address is free again: invited anew, the new link works and the old one still does not.
        Assert.Equal(HttpStatusCode.OK, (await AddAsync(admin, email)).StatusCode);
        var fresh = await AcceptPageAsync(Browser(), LinkIn(await MailAsync(email, 2)));
        Assert.Equal(HttpStatusCode.Gone, (await ChooseAsync(Browser(), acceptPath, Chosen)).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await ChooseAsync(Browser(), fresh, Chosen)).StatusCode);
        await SignedInAsync(email, Chosen);
        // Accepted, there is no invitation left to revoke: the answer says to deactivate instead, and nothing changes.
        var late = await RevokeAsync(admin, Row(email).Id);
        Assert.Equal(HttpStatusCode.OK, late.StatusCode);
        Assert.Contains("has chosen a password already: there is no invitation to revoke. Deactivate them instead.", await TextAsync(late));
        Assert.Null(Row(email).LockoutEnd);
    }

    [Fact]
    public async Task Revoking_the_invitation_of_a_member_who_owns_data_deactivates_them_instead()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var adminUser = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var admin = await SignedInAsync(adminUser.Email);
        var email = NewAddress();
        Assert.Equal(HttpStatusCode.OK, (await AddAsync(admin, email)).StatusCode);
        var id = Row(email).Id;
        var acceptPath = await AcceptPageAsync(Browser(), LinkIn(await MailAsync(email)));
        // An API token of theirs (the add-ins' sign-in makes one): something that is theirs and stays with the team.
        await app.WithDbAsync(async db =>
        {
            db.ApiTokens.Add(new ApiToken { UserId = id, Name = "Outlook add-in", Prefix = "et_test", Hash = new byte[32], CreatedAt = DateTimeOffset.UtcNow });
            await db.SaveChangesAsync();
        });

        Assert.Equal(HttpStatusCode.Redirect, (await RevokeAsync(admin, id)).StatusCode);
        var page = await admin.GetStringAsync("/team");
        Assert.Contains($"The invitation of {email} is revoked: its link no longer works. They were deactivated rather than removed", WebUtility.HtmlDecode(page));
        Assert.Contains("data-access=\"Deactivated\"", RowOf(page, email));
        var row = Row(email);
        Assert.NotNull(row.InvitationRevokedAt);
        Assert.Equal(EmailTracking.Server.Accounts.TeamMembers.DeactivatedUntil, row.LockoutEnd);
        Assert.True(app.WithDb(db => db.ApiTokens.Any(t => t.UserId == id)));

        var refused = await Browser().GetAsync(acceptPath);
        Assert.Equal(HttpStatusCode.Gone, refused.StatusCode);
        Assert.Contains("This invitation was revoked by an admin of the team", await TextAsync(refused));
        Assert.Equal(HttpStatusCode.Gone, (await ChooseAsync(Browser(), acceptPath, Chosen)).StatusCode);
        Assert.Null(Row(email).PasswordHash);

        // Reactivated, the old link still does not work (revoked); a new invitation does, and is pending again.
        Assert.Equal(HttpStatusCode.Redirect, (await PostAsync(admin, $"/team?handler=Reactivate&id={id}", [])).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await Browser().GetAsync(acceptPath)).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await InviteAsync(admin, id)).StatusCode);
        Assert.Null(Row(email).InvitationRevokedAt);
        Assert.Contains("data-access=\"Invited\"", RowOf(await admin.GetStringAsync("/team"), email));
        var fresh = await AcceptPageAsync(Browser(), LinkIn(await MailAsync(email, 2)));
        Assert.Equal(HttpStatusCode.Redirect, (await ChooseAsync(Browser(), fresh, Chosen)).StatusCode);
    }

    /// <summary>
    /// A member invited before the invitation was recorded (no password, no invitation on record, never in by any way)
    /// is shown as not signed in yet, with Resend invitation, rather than as "add-ins only"; a member who has an API
    /// token (`et users add`) or signed in with an add-in is add-ins only, as before.
    /// </summary>
    [Fact]
    public async Task A_member_invited_before_invitations_were_recorded_is_shown_not_signed_in_yet_with_resend()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var adminUser = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var admin = await SignedInAsync(adminUser.Email);
        // What the Team page's invitation left before the invitation state existed: the member, without a password, and
        // nothing recorded of the mail (its link still works: the old reset-page links forward).
        var email = NewAddress();
        using (var scope = app.Services.CreateScope())
        {
            var me = new EmailTracking.Server.Accounts.CurrentUser(adminUser.Id, adminUser.TeamId, TeamRole.Admin, adminUser.Email);
            await scope.ServiceProvider.GetRequiredService<EmailTracking.Server.Accounts.TeamMembers>()
                .AddAsync(me, email, null, TeamRole.Member, initialPassword: false);
        }
        // Made by `et users add` without a password (an API token), and one who signed in with the Outlook add-in.
        var withToken = await app.NewUserAsync(team: team);
        var addinEmail = NewAddress();
        using (var scope = app.Services.CreateScope())
        {
            var me = new EmailTracking.Server.Accounts.CurrentUser(adminUser.Id, adminUser.TeamId, TeamRole.Admin, adminUser.Email);
            var (addin, _) = await scope.ServiceProvider.GetRequiredService<EmailTracking.Server.Accounts.TeamMembers>()
                .AddAsync(me, addinEmail, null, TeamRole.Member, initialPassword: false);
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.UserLogins.Add(new Microsoft.AspNetCore.Identity.IdentityUserLogin<Guid>
            {
                LoginProvider = EmailTracking.Server.Outlook.MicrosoftSignIn.LoginProvider, ProviderKey = $"{Guid.NewGuid()}/{Guid.NewGuid()}",
                ProviderDisplayName = "Microsoft", UserId = addin.Id,
            });
            await db.SaveChangesAsync();
        }

        var page = await TextAsync(await admin.GetAsync("/team"));
        var row = RowOf(page, email);
        Assert.Contains("data-access=\"NotSignedInYet\"", row);
        Assert.Contains("not signed in yet", row);
        Assert.Contains("no password yet: an invitation lets them choose one", row);
        Assert.DoesNotContain("add-ins only", row);
        Assert.Contains(">Resend invitation<", row);
        foreach (var other in new[] { withToken.Email, addinEmail })
        {
            Assert.Contains("data-access=\"NoPassword\"", RowOf(page, other));
            Assert.Contains("add-ins only", RowOf(page, other));
            Assert.Contains(">Send invitation<", RowOf(page, other));
        }
        // The API says the same.
        var listed = (await adminUser.Client.GetJsonAsync("/api/team/members")).EnumerateArray().Single(m => m.GetProperty("email").GetString() == email);
        Assert.Equal("not-signed-in-yet", listed.GetProperty("access").GetString());
        Assert.Equal("none", listed.GetProperty("invitation").GetString());

        // Resent: pending, and its link lets them in.
        Assert.Equal(HttpStatusCode.Redirect, (await InviteAsync(admin, Row(email).Id)).StatusCode);
        Assert.Contains("data-access=\"Invited\"", RowOf(await admin.GetStringAsync("/team"), email));
        var accept = await AcceptPageAsync(Browser(), LinkIn(await MailAsync(email)));
        Assert.Equal(HttpStatusCode.Redirect, (await ChooseAsync(Browser(), accept, Chosen)).StatusCode);
        Assert.Contains("data-access=\"Active\"", RowOf(await admin.GetStringAsync("/team"), email));
    }

    [Fact]
    public async Task Only_an_admin_of_the_members_team_revokes_an_invitation()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var adminUser = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var admin = await SignedInAsync(adminUser.Email);
        var email = NewAddress();
        Assert.Equal(HttpStatusCode.OK, (await AddAsync(admin, email)).StatusCode);
        var id = Row(email).Id;
        await MailAsync(email);

        // A member of the same team who is not an admin is refused, and sees no button.
        var memberUser = await app.NewUserAsync(team: team, password: Password);
        var member = await SignedInAsync(memberUser.Email);
        var refusedPage = await member.GetAsync("/team");
        Assert.Equal(HttpStatusCode.Forbidden, refusedPage.StatusCode);
        Assert.DoesNotContain("class=\"revoke\"", await refusedPage.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Forbidden, (await RevokeAsync(member, id)).StatusCode);
        // An admin of another team does not find the member.
        var otherUser = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var other = await SignedInAsync(otherUser.Email);
        Assert.Equal(HttpStatusCode.NotFound, (await RevokeAsync(other, id)).StatusCode);

        var row = Row(email);
        Assert.Null(row.LockoutEnd);
        Assert.Null(row.InvitationRevokedAt);
        Assert.Contains("data-access=\"Invited\"", RowOf(await admin.GetStringAsync("/team"), email));
        // A member without a pending invitation (an admin with a password) has nothing to revoke.
        Assert.Contains("has chosen a password already", await TextAsync(await RevokeAsync(admin, memberUser.Id)));
    }
}

public sealed class TeamInvitationOnSqlite(PasswordResetSqliteApp app) : TeamInvitationTests(app), IClassFixture<PasswordResetSqliteApp>;

public sealed class TeamInvitationOnPostgres(PasswordResetPostgresApp app) : TeamInvitationTests(app), IClassFixture<PasswordResetPostgresApp>;
