using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Outlook;
using EmailTracking.Tests.Web;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Api;

/// <summary>
/// The Team page's member management through the REST API (<c>/api/team/members</c>), with a personal API token: an
/// admin lists, invites by mail (never a password), changes roles, deactivates, reactivates, sends and revokes
/// invitations, with the page's guards; members are refused, other teams' members are not found.
/// </summary>
public abstract class TeamApiTests(PasswordResetApp app)
{
    const string Password = "Correct-horse-battery-9";

    static string NewTeam() => $"team-{Guid.NewGuid():N}";

    static string NewAddress() => $"api{Guid.NewGuid():N}"[..14] + "@sender.test";

    static Task<HttpResponseMessage> InviteAsync(TestUser admin, string email, string role = "member") =>
        admin.Client.PostAsJsonAsync("/api/team/members", new { email, displayName = "Kevin Flynn", role });

    static Task<HttpResponseMessage> RoleAsync(TestUser admin, Guid id, string role) =>
        admin.Client.PatchAsJsonAsync($"/api/team/members/{id}", new { role });

    static Task<HttpResponseMessage> PostAsync(TestUser who, Guid id, string action) => who.Client.PostAsync($"/api/team/members/{id}/{action}", null);

    static async Task<JsonElement> JsonAsync(HttpResponseMessage res, HttpStatusCode expected)
    {
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == expected, $"{(int)res.StatusCode} (expected {(int)expected}): {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    async Task<JsonElement> MemberAsync(TestUser admin, Guid id) =>
        (await admin.Client.GetJsonAsync("/api/team/members")).EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == id);

    User Row(Guid id) => app.WithDb(db => db.Users.AsNoTracking().Single(u => u.Id == id));

    async Task<string> InvitationLinkAsync(string address, int count)
    {
        var mail = await app.Relay.MailAsync(address, count);
        var link = Regex.Match(mail.TextBody ?? "", @"http://localhost(/accept-invitation\?u=[0-9a-f]{32}&t=[^&\s]+)\s").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(link), "no invitation link in the mail:\n" + mail.TextBody);
        return link;
    }

    [Fact]
    public async Task An_admin_invites_a_member_by_mail_and_the_answer_holds_no_password_nor_link()
    {
        var team = NewTeam();
        var admin = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var email = NewAddress();

        var res = await InviteAsync(admin, email);
        var text = await res.Content.ReadAsStringAsync();
        var added = await JsonAsync(res, HttpStatusCode.Created);
        var id = added.GetProperty("id").GetGuid();
        Assert.Equal($"/api/team/members/{id}", res.Headers.Location!.OriginalString);
        Assert.Equal(email, added.GetProperty("email").GetString());
        Assert.Equal("Kevin Flynn", added.GetProperty("displayName").GetString());
        Assert.Equal("member", added.GetProperty("role").GetString());
        Assert.True(added.GetProperty("active").GetBoolean());
        Assert.Equal("invited", added.GetProperty("access").GetString());
        Assert.Equal("pending", added.GetProperty("invitation").GetString());
        Assert.Equal(added.GetProperty("invitedAt").GetDateTimeOffset() + TimeSpan.FromDays(7), added.GetProperty("invitationExpiresAt").GetDateTimeOffset());
        Assert.Equal("sign-in", added.GetProperty("addresses")[0].GetProperty("state").GetString());
        // Nothing that lets anyone in: no password was made, and the link is in the member's mail only.
        Assert.Null(Row(id).PasswordHash);
        var link = await InvitationLinkAsync(email, 1);
        Assert.DoesNotContain("accept-invitation", text);
        Assert.DoesNotContain(link.Split("t=")[1], text);
        Assert.Equal(admin.Id, Row(id).InvitedById);

        // Sent again: a second mail, still pending; the list shows the member as the page does.
        var again = await JsonAsync(await PostAsync(admin, id, "invitation"), HttpStatusCode.OK);
        Assert.Equal("pending", again.GetProperty("invitation").GetString());
        Assert.NotEqual(link, await InvitationLinkAsync(email, 2));
        var listed = await MemberAsync(admin, id);
        Assert.Equal("invited", listed.GetProperty("access").GetString());

        // Revoked: they never signed in and own nothing, so they are removed.
        var revoked = await JsonAsync(await admin.Client.DeleteAsync($"/api/team/members/{id}/invitation"), HttpStatusCode.OK);
        Assert.True(revoked.GetProperty("removed").GetBoolean());
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Id == id)));
        // The admin, who has a password, has no invitation to revoke nor to be sent.
        Assert.Contains("has chosen a password already", (await JsonAsync(await admin.Client.DeleteAsync($"/api/team/members/{admin.Id}/invitation"), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString());
        Assert.Contains("has chosen a password already", (await JsonAsync(await PostAsync(admin, admin.Id, "invitation"), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_relay_that_refuses_leaves_the_member_added_and_says_how_to_send_again()
    {
        var admin = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var email = NewAddress();
        app.Relay.Refuse = true;
        JsonElement problem;
        try
        {
            problem = await JsonAsync(await InviteAsync(admin, email), HttpStatusCode.BadGateway);
        }
        finally
        {
            app.Relay.Refuse = false;
        }
        var id = problem.GetProperty("memberId").GetGuid();
        Assert.Contains($"POST /api/team/members/{id}/invitation", problem.GetProperty("detail").GetString());
        Assert.Null(Row(id).PasswordHash);
        Assert.Equal("not-signed-in-yet", (await MemberAsync(admin, id)).GetProperty("access").GetString());
        Assert.Equal("invited", (await JsonAsync(await PostAsync(admin, id, "invitation"), HttpStatusCode.OK)).GetProperty("access").GetString());
        await InvitationLinkAsync(email, 1);
    }

    [Fact]
    public async Task An_admin_changes_roles_deactivates_and_reactivates_and_the_team_keeps_an_admin_who_can_sign_in()
    {
        var team = NewTeam();
        var admin = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var other = await app.NewUserAsync(team: team, password: Password);

        // The only admin can neither step down nor deactivate themselves.
        var last = await JsonAsync(await RoleAsync(admin, admin.Id, "member"), HttpStatusCode.Conflict);
        Assert.Contains("only admin who can sign in", last.GetProperty("detail").GetString());
        Assert.Contains("You cannot deactivate yourself", (await JsonAsync(await PostAsync(admin, admin.Id, "deactivate"), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString());
        Assert.Contains("role", (await JsonAsync(await admin.Client.PatchAsJsonAsync($"/api/team/members/{other.Id}", new { }), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString());
        Assert.Equal(TeamRole.Admin, Row(admin.Id).Role);

        Assert.Equal("admin", (await JsonAsync(await RoleAsync(admin, other.Id, "admin"), HttpStatusCode.OK)).GetProperty("role").GetString());
        var deactivated = await JsonAsync(await PostAsync(admin, other.Id, "deactivate"), HttpStatusCode.OK);
        Assert.False(deactivated.GetProperty("active").GetBoolean());
        Assert.Equal("deactivated", deactivated.GetProperty("access").GetString());
        // Their token stops at once; a deactivated admin does not count.
        Assert.Equal(HttpStatusCode.Unauthorized, (await other.Client.GetAsync("/api/me")).StatusCode);
        await JsonAsync(await RoleAsync(admin, admin.Id, "member"), HttpStatusCode.Conflict);

        var reactivated = await JsonAsync(await PostAsync(admin, other.Id, "reactivate"), HttpStatusCode.OK);
        Assert.True(reactivated.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await other.Client.GetAsync("/api/me")).StatusCode);
        // Now this admin may step down; as a member, the API is refused to them.
        Assert.Equal("member", (await JsonAsync(await RoleAsync(admin, admin.Id, "member"), HttpStatusCode.OK)).GetProperty("role").GetString());
        await JsonAsync(await admin.Client.GetAsync("/api/team/members"), HttpStatusCode.Forbidden);
        Assert.Equal(TeamRole.Admin, Row(other.Id).Role);
    }

    [Fact]
    public async Task Two_admins_demoting_each_other_at_once_leave_one_admin()
    {
        for (var round = 0; round < 4; round++)
        {
            var team = NewTeam();
            var a = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
            var b = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
            var answers = await Task.WhenAll(RoleAsync(a, b.Id, "member"), RoleAsync(b, a.Id, "member"));
            // One goes through; the other is refused, as the last admin, or as no longer an admin at all.
            Assert.Single(answers, r => r.StatusCode == HttpStatusCode.OK);
            Assert.Single(answers, r => r.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.Forbidden);
            Assert.Equal(1, app.WithDb(db => db.Users.Count(u => u.TeamId == a.TeamId && u.Role == TeamRole.Admin)));
        }
    }

    [Fact]
    public async Task The_same_address_invited_at_once_by_admins_of_two_teams_is_added_once_and_refused_without_saying_whose()
    {
        var admins = new List<TestUser>();
        for (var i = 0; i < 2; i++)
        {
            var team = NewTeam();
            admins.Add(await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password));
            admins.Add(await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password));
        }
        for (var round = 0; round < 3; round++)
        {
            var email = NewAddress();
            var answers = await Task.WhenAll(admins.Select(a => InviteAsync(a, email)));
            var bodies = await Task.WhenAll(answers.Select(a => a.Content.ReadAsStringAsync()));
            Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Created);
            Assert.Equal(admins.Count - 1, answers.Count(a => a.StatusCode == HttpStatusCode.BadRequest));
            Assert.Equal(admins.Count - 1, bodies.Count(b => b.Contains($"{email} already belongs to a user.")));
            var user = app.WithDb(db => db.Users.AsNoTracking().Single(u => u.Email == email));
            // The refusals name neither the team nor its admin.
            var team = app.WithDb(db => db.Teams.Single(t => t.Id == user.TeamId).Name);
            Assert.All(bodies.Where(b => !b.Contains("\"id\"")), b => Assert.DoesNotContain(team, b));
        }
        // An address some user signs in with already.
        var taken = await JsonAsync(await InviteAsync(admins[0], admins[2].Email), HttpStatusCode.BadRequest);
        Assert.Equal($"{admins[2].Email} already belongs to a user.", taken.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_role_the_enum_does_not_define_is_a_400_and_nothing_changes()
    {
        // The JSON reader took any number for an enum: {"role": 5} answered 200 and stored a role that is neither admin
        // nor member, shown by /api/me and `et users list`.
        var team = NewTeam();
        var admin = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var member = await app.NewUserAsync(team: team);
        foreach (var body in new[] { """{"role":5}""", """{"role":-1}""", """{"role":"5"}""" })
        {
            var res = await admin.Client.PatchAsync($"/api/team/members/{member.Id}", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            var problem = await JsonAsync(res, HttpStatusCode.BadRequest);
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
            Assert.Contains("is not allowed here (member or admin) at $.role", problem.GetProperty("detail").GetString());
        }
        Assert.Equal(TeamRole.Member, Row(member.Id).Role);
        Assert.Equal("member", (await member.Client.GetJsonAsync("/api/me")).GetProperty("role").GetString());
        // Numbers the enum defines are still read, as before.
        Assert.Equal("admin", (await JsonAsync(await admin.Client.PatchAsync($"/api/team/members/{member.Id}",
            new StringContent("""{"role":1}""", System.Text.Encoding.UTF8, "application/json")), HttpStatusCode.OK)).GetProperty("role").GetString());

        var email = NewAddress();
        var invite = await admin.Client.PostAsync("/api/team/members",
            new StringContent($$"""{"email":"{{email}}","role":7}""", System.Text.Encoding.UTF8, "application/json"));
        await JsonAsync(invite, HttpStatusCode.BadRequest);
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == email)));

        // The operator's commands (`et users add`, `et users role`) parse "--role 5" as a number too: the services refuse it.
        using var scope = app.Services.CreateScope();
        var members = scope.ServiceProvider.GetRequiredService<TeamMembers>();
        await Assert.ThrowsAsync<AccountException>(() => members.SetRoleAsOperatorAsync(member.Email, (TeamRole)5));
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        await Assert.ThrowsAsync<AccountException>(() => accounts.CreateUserAsync(new NewUser(NewAddress(), team, null, (TeamRole)5, null, null)));
        await Assert.ThrowsAsync<AccountException>(() => accounts.CreateUserAsync(new NewUser(NewAddress(), NewTeam(), (Plan)9, TeamRole.Member, null, null)));
        Assert.Equal(TeamRole.Admin, Row(member.Id).Role);
    }

    [Fact]
    public async Task A_solo_team_keeps_its_one_member_and_bad_input_is_refused_clearly()
    {
        var solo = await app.NewUserAsync(team: NewTeam(), plan: Plan.Solo, role: TeamRole.Admin, password: Password);
        var email = NewAddress();
        Assert.Contains("Solo plan", (await JsonAsync(await InviteAsync(solo, email), HttpStatusCode.BadRequest)).GetProperty("detail").GetString());
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == email)));

        var admin = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        Assert.Contains("is not an email address", (await JsonAsync(await InviteAsync(admin, "not an address"), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString());
        Assert.Contains("Give the new member's email address", (await JsonAsync(await admin.Client.PostAsJsonAsync("/api/team/members", new { }), HttpStatusCode.BadRequest))
            .GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await InviteAsync(admin, NewAddress(), role: "owner")).StatusCode);
        Assert.Equal(1, (await admin.Client.GetJsonAsync("/api/team/members")).GetArrayLength());
        Assert.Empty(app.Relay.To(email));
    }

    [Fact]
    public async Task Members_are_refused_and_another_teams_members_are_not_found()
    {
        var team = NewTeam();
        var admin = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password);
        var member = await app.NewUserAsync(team: team, password: Password);
        var stranger = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var email = NewAddress();

        Assert.Equal(TeamApi.AdminsOnlyText, (await JsonAsync(await member.Client.GetAsync("/api/team/members"), HttpStatusCode.Forbidden)).GetProperty("title").GetString());
        await JsonAsync(await InviteAsync(member, email), HttpStatusCode.Forbidden);
        await JsonAsync(await RoleAsync(member, member.Id, "admin"), HttpStatusCode.Forbidden);
        await JsonAsync(await PostAsync(member, admin.Id, "deactivate"), HttpStatusCode.Forbidden);
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == email)));
        Assert.Equal(TeamRole.Member, Row(member.Id).Role);

        // Another team's admin: not found, as for an id nobody has; their own list has only their team.
        foreach (var action in new[] { "deactivate", "reactivate", "invitation" })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(stranger, member.Id, action)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await RoleAsync(stranger, member.Id, "admin")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.DeleteAsync($"/api/team/members/{member.Id}/invitation")).StatusCode);
        Assert.Equal([stranger.Id], (await stranger.Client.GetJsonAsync("/api/team/members")).EnumerateArray().Select(m => m.GetProperty("id").GetGuid()));
        var row = Row(member.Id);
        Assert.Null(row.LockoutEnd);
        Assert.Equal(TeamRole.Member, row.Role);
    }
}

public sealed class TeamApiOnSqlite(PasswordResetSqliteApp app) : TeamApiTests(app), IClassFixture<PasswordResetSqliteApp>;

public sealed class TeamApiOnPostgres(PasswordResetPostgresApp app) : TeamApiTests(app), IClassFixture<PasswordResetPostgresApp>;

/// <summary>
/// The Outlook add-in's Microsoft token, which the add-in gets for whoever opens Outlook, manages no members, an admin's
/// neither; and a server that cannot mail invitations adds none through the API (it would have to hand out a password).
/// </summary>
public abstract class TeamApiAddinTests(OutlookApp app)
{
    [Fact]
    public async Task The_addins_microsoft_token_is_refused_even_for_an_admin_and_changes_nothing()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var admin = await app.NewUserAsync(team: team, role: TeamRole.Admin, password: "Correct-horse-battery-9");
        var member = await app.NewUserAsync(team: team);
        var pane = app.AsMicrosoftUser(admin.Email);
        // The token is good for the rest of the API.
        Assert.Equal(HttpStatusCode.OK, (await pane.GetAsync("/api/me")).StatusCode);

        var calls = new Func<Task<HttpResponseMessage>>[]
        {
            () => pane.GetAsync("/api/team/members"),
            () => pane.PostAsJsonAsync("/api/team/members", new { email = "kevin@encom.test" }),
            () => pane.PatchAsJsonAsync($"/api/team/members/{member.Id}", new { role = "admin" }),
            () => pane.PostAsync($"/api/team/members/{member.Id}/deactivate", null),
            () => pane.PostAsync($"/api/team/members/{member.Id}/invitation", null),
            () => pane.DeleteAsync($"/api/team/members/{member.Id}/invitation"),
            () => pane.DeleteAsync($"/api/team/members/{member.Id}/microsoft-accounts"),
        };
        foreach (var call in calls)
        {
            var res = await call();
            var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
            Assert.Equal(TeamApi.AddinRefusedReason, problem.GetProperty("reason").GetString());
            Assert.Contains("personal API token", problem.GetProperty("detail").GetString());
        }
        var row = app.WithDb(db => db.Users.AsNoTracking().Single(u => u.Id == member.Id));
        Assert.Equal(TeamRole.Member, row.Role);
        Assert.Null(row.LockoutEnd);
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == "kevin@encom.test")));
        // The admin's personal token is taken.
        Assert.Equal(2, (await admin.Client.GetJsonAsync("/api/team/members")).GetArrayLength());
    }

    [Fact]
    public async Task The_addins_microsoft_token_makes_no_personal_api_token_which_would_outlive_it()
    {
        var user = await app.NewUserAsync(password: "Correct-horse-battery-9");
        var pane = app.AsMicrosoftUser(user.Email);
        var before = app.WithDb(db => db.ApiTokens.Count(t => t.UserId == user.Id));
        var res = await pane.PostAsJsonAsync("/api/tokens", new { name = "from outlook" });
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        Assert.Equal(TeamApi.AddinRefusedReason, problem.GetProperty("reason").GetString());
        Assert.Equal(before, app.WithDb(db => db.ApiTokens.Count(t => t.UserId == user.Id)));
        // A personal token makes one.
        Assert.Equal(HttpStatusCode.Created, (await user.Client.PostAsJsonAsync("/api/tokens", new { name = "script" })).StatusCode);
    }

    [Fact]
    public async Task Without_mail_no_member_is_added_and_no_password_is_answered()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: "Correct-horse-battery-9");
        var email = $"nomail{Guid.NewGuid():N}"[..16] + "@sender.test";
        var res = await admin.Client.PostAsJsonAsync("/api/team/members", new { email });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, res.StatusCode);
        Assert.Contains("never hands out passwords", await res.Content.ReadAsStringAsync());
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == email)));
    }
}

public sealed class TeamApiAddinOnSqlite(OutlookSqliteApp app) : TeamApiAddinTests(app), IClassFixture<OutlookSqliteApp>;

public sealed class TeamApiAddinOnPostgres(OutlookPostgresApp app) : TeamApiAddinTests(app), IClassFixture<OutlookPostgresApp>;
