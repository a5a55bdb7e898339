using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace EmailTracking.Tests.Web;

/// <summary>
/// With a relay and a public base URL, "Add member" mails the new member a link to choose their own password (no
/// initial password is shown); the link works once, within its lifetime, and the admin can send it again.
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

    async Task<MimeMessage> MailAsync(string address, int count = 1)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (app.Relay.To(address).Count < count)
        {
            Assert.True(DateTime.UtcNow < until, $"no invitation mail {count} reached {address}");
            await Task.Delay(50);
        }
        return app.Relay.To(address)[count - 1];
    }

    static string LinkIn(MimeMessage mail)
    {
        var path = Regex.Match(mail.TextBody ?? "", @"http://localhost(/reset-password\?u=[0-9a-f]{32}&t=[^&\s]+&k=invite)\s").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(path), "no invitation link in the mail:\n" + mail.TextBody);
        return path;
    }

    static async Task<(HttpStatusCode Status, string Page)> ChooseAsync(HttpClient browser, string path, string password)
    {
        var query = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + path).Query);
        var res = await PostAsync(browser, path, new()
        {
            ["u"] = query["u"] ?? "", ["t"] = query["t"] ?? "", ["k"] = query["k"] ?? "", ["New"] = password, ["Confirm"] = password,
        });
        return (res.StatusCode, await res.Content.ReadAsStringAsync());
    }

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
        var browser = Browser();
        var form = await browser.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Contains("Choose your password", await form.Content.ReadAsStringAsync());
        // Opening it sets nothing.
        Assert.Null(Row(email).PasswordHash);
        // Not a reset link: the same token without the invitation's kind does not work.
        Assert.Equal(HttpStatusCode.BadRequest, (await browser.GetAsync(path.Replace("&k=invite", "", StringComparison.Ordinal))).StatusCode);

        var (status, done) = await ChooseAsync(browser, path, Chosen);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("data-state=\"Done\"", done);
        var member = await SignedInAsync(email, Chosen);
        Assert.Equal(HttpStatusCode.OK, (await member.GetAsync("/tokens")).StatusCode);

        // Once.
        var (againStatus, again) = await ChooseAsync(Browser(), path, "Another-password-8");
        Assert.Equal(HttpStatusCode.BadRequest, againStatus);
        Assert.Contains("This invitation link does not work", again);
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
        var id = Row(email).Id;
        var list = await admin.GetStringAsync("/team");
        Assert.Contains($"data-member=\"{email}\" data-access=\"NoPassword\"", list);
        Assert.Matches($"<form [^>]*action=\"/team\\?[^\"]*handler=Invite[^\"]*\"", list);
        Assert.Matches($"<form [^>]*action=\"/team\\?[^\"]*{id}[^\"]*\"[^>]*class=\"invite\"|<form [^>]*class=\"invite\"[^>]*action=\"/team\\?[^\"]*{id}", list);

        Assert.Equal(HttpStatusCode.Redirect, (await InviteAsync(admin, id)).StatusCode);
        Assert.Contains($"An invitation was mailed to {email}", await admin.GetStringAsync("/team"));
        var first = LinkIn(await MailAsync(email));

        // Past its lifetime the link is refused; a new one works.
        app.Clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(1));
        var expired = await Browser().GetAsync(first);
        Assert.Equal(HttpStatusCode.BadRequest, expired.StatusCode);
        Assert.Contains("it has expired (links work for 7 days)", await expired.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Redirect, (await InviteAsync(admin, id)).StatusCode);
        var (status, _) = await ChooseAsync(Browser(), LinkIn(await MailAsync(email, 2)), Chosen);
        Assert.Equal(HttpStatusCode.OK, status);
        await SignedInAsync(email, Chosen);

        // A member of another team is not found.
        var stranger = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await InviteAsync(admin, stranger.Id)).StatusCode);
    }
}

public sealed class TeamInvitationOnSqlite(PasswordResetSqliteApp app) : TeamInvitationTests(app), IClassFixture<PasswordResetSqliteApp>;

public sealed class TeamInvitationOnPostgres(PasswordResetPostgresApp app) : TeamInvitationTests(app), IClassFixture<PasswordResetPostgresApp>;
