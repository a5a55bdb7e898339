using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using EmailTracking.Server.Mailboxes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The Team page: a team's admins list its members, add one with a one-time initial password, change roles and
/// deactivate or reactivate members, never leaving the team without an admin who can sign in; members who are not
/// admins are refused, and an admin sees and changes only their own team.
/// </summary>
public abstract class TeamPageTests(TeamPageApp app)
{
    const string Password = "Correct-horse-battery-9";

    async Task<HttpClient> SignedInAsync(string email, string password = Password)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var res = await SignInTests.PostLoginAsync(client, new() { ["Email"] = email, ["Password"] = password });
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return client;
    }

    /// <summary>A form posted as the browser would, with the session's antiforgery token (read from a page every user may open).</summary>
    static async Task<HttpResponseMessage> PostAsync(HttpClient client, string url, Dictionary<string, string> fields)
    {
        var form = await client.GetStringAsync("/password");
        fields["__RequestVerificationToken"] = Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        return await client.PostAsync(url, new FormUrlEncodedContent(fields));
    }

    static Task<HttpResponseMessage> AddAsync(HttpClient admin, string email, string? name = null, string role = "Member") =>
        PostAsync(admin, "/team?handler=Add", new() { ["Email"] = email, ["DisplayName"] = name ?? "", ["Role"] = role });

    static Task<HttpResponseMessage> RoleAsync(HttpClient admin, Guid id, string role) =>
        PostAsync(admin, $"/team?handler=Role&id={id}", new() { ["Role"] = role });

    static Task<HttpResponseMessage> DeactivateAsync(HttpClient admin, Guid id) => PostAsync(admin, $"/team?handler=Deactivate&id={id}", []);

    static Task<HttpResponseMessage> ReactivateAsync(HttpClient admin, Guid id) => PostAsync(admin, $"/team?handler=Reactivate&id={id}", []);

    /// <summary>Signs in with a password someone else chose and, sent to the password page, chooses <paramref name="own"/>.</summary>
    async Task<HttpClient> SignedInWithOwnPasswordAsync(string email, string initial, string own = Password)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var res = await SignInTests.PostLoginAsync(client, new() { ["Email"] = email, ["Password"] = initial });
        Assert.Equal("/password", res.Headers.Location?.OriginalString);
        var changed = await PostAsync(client, "/password", new() { ["Current"] = initial, ["New"] = own, ["Confirm"] = own });
        Assert.Equal(HttpStatusCode.Redirect, changed.StatusCode);
        return client;
    }

    static string NewPassword(string html) => WebUtility.HtmlDecode(Regex.Match(html, "id=\"new-password\">([^<]+)<").Groups[1].Value);

    /// <summary>The team's admin, signed in with a password, in a team of <paramref name="plan"/> named <paramref name="team"/>.</summary>
    async Task<(TestUser User, HttpClient Web)> AdminAsync(string team, Plan plan = Plan.Team)
    {
        var admin = await app.NewUserAsync(team: team, plan: plan, role: TeamRole.Admin, password: Password);
        return (admin, await SignedInAsync(admin.Email));
    }

    static string NewTeam() => $"team-{Guid.NewGuid():N}";

    User Row(Guid id) => app.WithDb(db => db.Users.AsNoTracking().Single(u => u.Id == id));

    [Fact]
    public async Task An_admin_adds_a_member_who_signs_in_with_the_initial_password_shown_once()
    {
        var (_, admin) = await AdminAsync(NewTeam());
        Assert.Contains("href=\"/team\"", await admin.GetStringAsync("/"));
        var email = $"new{Guid.NewGuid():N}"[..14] + "@sender.test";

        var res = await AddAsync(admin, email.ToUpperInvariant(), "Ada Lovelace");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Contains("no-store", res.Headers.CacheControl?.ToString());
        var html = await res.Content.ReadAsStringAsync();
        Assert.Contains($"{email} was added.", html);
        var password = NewPassword(html);
        Assert.Matches("^[A-Za-z0-9]{16}$", password);

        // Listed with the name and role given; the password is not on the page any more.
        var list = await admin.GetStringAsync("/team");
        Assert.Contains($"data-member=\"{email}\" data-access=\"Active\"", list);
        Assert.Contains("Ada Lovelace", list);
        Assert.DoesNotContain(password, list);
        // Kept as Identity's hash only.
        var hash = app.WithDb(db => db.Users.Where(u => u.Email == email).Select(u => u.PasswordHash).Single());
        Assert.NotNull(hash);
        Assert.DoesNotContain(password, hash);

        // The new member signs in with it, chooses their own, and is a member: the team page is not theirs.
        var member = await SignedInWithOwnPasswordAsync(email, password);
        Assert.DoesNotContain("href=\"/team\"", await member.GetStringAsync("/"));
        Assert.Equal(HttpStatusCode.Forbidden, (await member.GetAsync("/team")).StatusCode);

        // An admin added as one is an admin.
        var second = $"adm{Guid.NewGuid():N}"[..14] + "@sender.test";
        var adminPassword = NewPassword(await (await AddAsync(admin, second, role: "Admin")).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await (await SignedInWithOwnPasswordAsync(second, adminPassword)).GetAsync("/team")).StatusCode);
    }

    /// <summary>
    /// The members' table is in one order, the server's (no column sorts in the browser): admins first, then by address.
    /// Addresses are stored lower-cased, so however one was typed (ZED@…) it sorts among the others as text of one
    /// case, not before them all; no number or date is sorted as text.
    /// </summary>
    [Fact]
    public async Task Members_are_listed_admins_first_then_by_address_whatever_case_it_was_typed_in()
    {
        var (admin, web) = await AdminAsync(NewTeam());
        var tag = $"{Guid.NewGuid():N}"[..8];
        foreach (var (typed, role) in new[] { ($"ZED.{tag}@encom.test", "Member"), ($"bob.{tag}@encom.test", "Member"), ($"Alan.{tag}@encom.test", "Member"), ($"Carol.{tag}@Encom.test", "Admin") })
        {
            Assert.Equal(HttpStatusCode.OK, (await AddAsync(web, typed, role: role)).StatusCode);
        }
        var list = await web.GetStringAsync("/team");
        var order = Regex.Matches(list, "<tr data-member=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        var admins = new[] { admin.Email, $"carol.{tag}@encom.test" }.Order(StringComparer.Ordinal);
        Assert.Equal([.. admins, $"alan.{tag}@encom.test", $"bob.{tag}@encom.test", $"zed.{tag}@encom.test"], order);
    }

    [Fact]
    public async Task A_member_given_an_initial_password_must_choose_their_own_before_anything_else_and_their_last_sign_in_is_shown()
    {
        var (_, admin) = await AdminAsync(NewTeam());
        var email = $"chg{Guid.NewGuid():N}"[..14] + "@sender.test";
        var initial = NewPassword(await (await AddAsync(admin, email)).Content.ReadAsStringAsync());
        var id = app.WithDb(db => db.Users.Where(u => u.Email == email).Select(u => u.Id).Single());
        Assert.True(Row(id).MustChangePassword);
        string Cell(string list) => Regex.Match(list, $"data-member=\"{Regex.Escape(email)}\"[\\s\\S]*?<td class=\"last-sign-in\">(.*?)</td>").Groups[1].Value;
        Assert.Equal("Never", Cell(await admin.GetStringAsync("/team")));
        Assert.Null(Row(id).LastSignInAt);
        // Their API token (the add-ins, scripts) is not a web session: it works all along.
        string token;
        using (var scope = app.Services.CreateScope())
        {
            token = (await scope.ServiceProvider.GetRequiredService<Server.Accounts.AccountService>().CreateTokenAsync(id, "add-in")).Token;
        }
        using var api = app.CreateClient();
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);

        var web = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var signIn = await SignInTests.PostLoginAsync(web, new() { ["Email"] = email, ["Password"] = initial, ["ReturnUrl"] = "/tokens" });
        Assert.Equal("/password", signIn.Headers.Location?.OriginalString);
        Assert.NotNull(Row(id).LastSignInAt);
        Assert.Contains("<time", Cell(await admin.GetStringAsync("/team")));
        Assert.Contains("chooses a new password at sign-in", await admin.GetStringAsync("/team"));
        // Every page sends them to the password page; the API refuses the cookie; signing out works.
        foreach (var page in new[] { "/", "/tokens", "/team", "/addresses" })
        {
            var res = await web.GetAsync(page);
            Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
            Assert.Equal("/password", res.Headers.Location?.OriginalString);
        }
        Assert.Equal(HttpStatusCode.Forbidden, (await web.GetAsync("/api/messages")).StatusCode);
        var form = await web.GetAsync("/password");
        Assert.Equal(HttpStatusCode.OK, form.StatusCode);
        Assert.Contains("id=\"change-required\"", await form.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/messages")).StatusCode);

        // Keeping the one the admin chose is not choosing one.
        var same = await PostAsync(web, "/password", new() { ["Current"] = initial, ["New"] = initial, ["Confirm"] = initial });
        Assert.Contains("Choose a password other than the current one.", await same.Content.ReadAsStringAsync());
        Assert.True(Row(id).MustChangePassword);

        var changed = await PostAsync(web, "/password", new() { ["Current"] = initial, ["New"] = Password, ["Confirm"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, changed.StatusCode);
        Assert.False(Row(id).MustChangePassword);
        Assert.Equal(HttpStatusCode.OK, (await web.GetAsync("/tokens")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await web.GetAsync("/api/messages")).StatusCode);
        // Signing in again goes where it was asked to.
        var again = await SignInTests.PostLoginAsync(app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }),
            new() { ["Email"] = email, ["Password"] = Password, ["ReturnUrl"] = "/tokens" });
        Assert.Equal("/tokens", again.Headers.Location?.OriginalString);
        Assert.DoesNotContain("chooses a new password at sign-in", await admin.GetStringAsync("/team"));
    }

    [Fact]
    public async Task Members_who_are_not_admins_are_refused_the_page_and_every_form_on_it()
    {
        var team = NewTeam();
        var (adminUser, _) = await AdminAsync(team);
        var memberUser = await app.NewUserAsync(team: team, password: Password);
        var member = await SignedInAsync(memberUser.Email);

        var page = await member.GetAsync("/team");
        Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Only a team admin", html);
        Assert.DoesNotContain(adminUser.Email, html);

        var add = await AddAsync(member, "sneaky@sender.test", role: "Admin");
        Assert.Equal(HttpStatusCode.Forbidden, add.StatusCode);
        Assert.DoesNotContain("new-password", await add.Content.ReadAsStringAsync());
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == "sneaky@sender.test")));
        Assert.Equal(HttpStatusCode.Forbidden, (await RoleAsync(member, memberUser.Id, "Admin")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await DeactivateAsync(member, adminUser.Id)).StatusCode);
        Assert.Equal(TeamRole.Member, Row(memberUser.Id).Role);
        Assert.Null(Row(adminUser.Id).LockoutEnd);
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_error_and_the_form_keeps_what_was_typed()
    {
        var team = NewTeam();
        var (me, admin) = await AdminAsync(team);
        // Someone in another team signs in with an address whose domain is internationalized, stored as punycode.
        var other = await app.NewUserAsync();
        var local = $"zoe{Guid.NewGuid():N}"[..12];
        await app.WithDbAsync(async db =>
        {
            db.UserAddresses.Add(new UserAddress { UserId = other.Id, Address = $"{local}@xn--r8jz45g.jp" });
            db.UserLogins.Add(new Microsoft.AspNetCore.Identity.IdentityUserLogin<Guid>
            {
                LoginProvider = Server.Accounts.AccountService.VerifiedAddressProvider, ProviderKey = $"{local}@xn--r8jz45g.jp", UserId = other.Id,
            });
            await db.SaveChangesAsync();
        });
        var before = app.WithDb(db => db.Users.Count());

        async Task<string> Refused(string email, string name, string role, string message)
        {
            var res = await AddAsync(admin, email, name, role);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            var html = await res.Content.ReadAsStringAsync();
            Assert.Contains(message, WebUtility.HtmlDecode(html));
            Assert.DoesNotContain("new-password", html);
            return html;
        }

        var kept = await Refused("not an address", "Ada", "Admin", "'not an address' is not an email address.");
        Assert.Contains("value=\"not an address\"", kept);
        Assert.Contains("value=\"Ada\"", kept);
        Assert.Matches("<option value=\"Admin\" selected", kept);
        await Refused("", "Ada", "Member", "Give the new member's email address.");
        await Refused("ada@sender.test", "Ada", "Owner", "Choose the new member's role: Member or Admin.");
        await Refused("ada@sender.test", new string('x', 201), "Member", "The display name is longer than 200 characters.");
        // Taken by a user of another team: said so, without naming the team or the user.
        var taken = await Refused(other.Email, "", "Member", $"{other.Email} already belongs to a user.");
        Assert.DoesNotContain(other.Id.ToString(), taken);
        // The same mailbox with its domain written in Unicode is the same address.
        await Refused($"{local}@例え.jp", "", "Member", "already belongs to a user.");
        await Refused($"{local.ToUpperInvariant()}@XN--R8JZ45G.JP", "", "Member", "already belongs to a user.");
        Assert.Equal(before, app.WithDb(db => db.Users.Count()));

        // A role that is no role: refused, nothing changed.
        var member = await app.NewUserAsync(team: team);
        foreach (var role in new[] { "Owner", "1", "" })
        {
            var res = await RoleAsync(admin, member.Id, role);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Contains("Choose a role: Member or Admin.", await res.Content.ReadAsStringAsync());
        }
        Assert.Equal(TeamRole.Member, Row(member.Id).Role);
        Assert.Equal(TeamRole.Admin, Row(me.Id).Role);
    }

    [Fact]
    public async Task The_same_address_added_at_once_by_several_admins_is_added_once_and_refused_clearly_to_the_others()
    {
        // Admins of two teams (a team's own adds wait for one another on its row; two teams' do not), each adding the
        // same addresses at the same moment, several times over.
        var admins = new List<HttpClient>();
        for (var i = 0; i < 2; i++)
        {
            var team = NewTeam();
            admins.Add((await AdminAsync(team)).Web);
            admins.Add(await SignedInAsync((await app.NewUserAsync(team: team, role: TeamRole.Admin, password: Password)).Email));
        }
        for (var round = 0; round < 4; round++)
        {
            var email = $"race{Guid.NewGuid():N}"[..14] + "@sender.test";
            var answers = await Task.WhenAll(admins.Select(a => AddAsync(a, email)));
            var bodies = await Task.WhenAll(answers.Select(a => a.Content.ReadAsStringAsync()));
            Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
            Assert.Single(bodies, b => b.Contains($"{email} was added."));
            Assert.Equal(admins.Count - 1, bodies.Count(b => b.Contains($"{email} already belongs to a user.")));
            // One user, whole: their address and its verified-address login, nothing of the others'.
            var user = app.WithDb(db => db.Users.AsNoTracking().Single(u => u.Email == email));
            Assert.Equal([user.Id], app.WithDb(db => db.UserAddresses.Where(a => a.Address == email).Select(a => a.UserId).ToList()));
            Assert.Equal([user.Id], app.WithDb(db => db.UserLogins.Where(l => l.ProviderKey == email).Select(l => l.UserId).ToList()));
        }
    }

    [Fact]
    public async Task A_solo_team_refuses_a_second_member()
    {
        var (_, admin) = await AdminAsync(NewTeam(), Plan.Solo);
        Assert.Contains("id=\"solo-plan\"", await admin.GetStringAsync("/team"));
        var res = await AddAsync(admin, "second@sender.test");
        Assert.Contains("Your team is on the Solo plan, which has one member.", await res.Content.ReadAsStringAsync());
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == "second@sender.test")));
    }

    [Fact]
    public async Task The_team_keeps_an_admin_who_can_sign_in_whatever_is_demoted_or_deactivated()
    {
        var team = NewTeam();
        var (me, admin) = await AdminAsync(team);
        // The only admin cannot step down, nor deactivate themselves.
        Assert.Contains("is the team&#x27;s only admin who can sign in", await (await RoleAsync(admin, me.Id, "Member")).Content.ReadAsStringAsync());
        Assert.Contains("You cannot deactivate yourself", await (await DeactivateAsync(admin, me.Id)).Content.ReadAsStringAsync());
        Assert.Equal(TeamRole.Admin, Row(me.Id).Role);

        // A second admin, deactivated, cannot sign in: they do not count.
        var other = await app.NewUserAsync(team: team, password: Password);
        Assert.Equal(HttpStatusCode.Redirect, (await RoleAsync(admin, other.Id, "Admin")).StatusCode);
        Assert.Contains($"{other.Email} is now an admin; their open web sessions ask them to sign in again.", await admin.GetStringAsync("/team"));
        Assert.Equal(HttpStatusCode.Redirect, (await DeactivateAsync(admin, other.Id)).StatusCode);
        Assert.Contains("only admin who can sign in", await (await RoleAsync(admin, me.Id, "Member")).Content.ReadAsStringAsync());
        // Nor does one without a password (made by `et users add` for the add-ins): they cannot reach this page.
        var noPassword = await app.NewUserAsync(team: team, role: TeamRole.Admin);
        Assert.Contains("only admin who can sign in", await (await RoleAsync(admin, me.Id, "Member")).Content.ReadAsStringAsync());
        Assert.Contains($"data-member=\"{noPassword.Email}\" data-access=\"NoPassword\"", await admin.GetStringAsync("/team"));

        // Reactivated, the other admin can take over: this admin steps down and leaves the page, still signed in.
        Assert.Equal(HttpStatusCode.Redirect, (await ReactivateAsync(admin, other.Id)).StatusCode);
        var down = await RoleAsync(admin, me.Id, "Member");
        Assert.Equal(HttpStatusCode.Redirect, down.StatusCode);
        Assert.Equal("/", down.Headers.Location!.OriginalString);
        Assert.Equal(TeamRole.Member, Row(me.Id).Role);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/tokens")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await admin.GetAsync("/team")).StatusCode);

        // The one admin left, signed in, cannot leave the team without one either.
        var otherWeb = await SignedInAsync(other.Email);
        Assert.Contains("only admin who can sign in", await (await RoleAsync(otherWeb, other.Id, "Member")).Content.ReadAsStringAsync());
        Assert.Equal(TeamRole.Admin, Row(other.Id).Role);
    }

    [Fact]
    public async Task A_deactivated_member_is_signed_out_at_once_their_tokens_stop_and_their_data_stays_with_the_team()
    {
        var team = NewTeam();
        var (_, admin) = await AdminAsync(team);
        var member = await app.NewUserAsync(team: team, password: Password);
        var message = (await member.RegisterSimpleAsync()).GetProperty("id").GetGuid();
        var session = await SignedInAsync(member.Email);
        Assert.Equal(HttpStatusCode.OK, (await session.GetAsync("/tokens")).StatusCode);

        Assert.Equal(HttpStatusCode.Redirect, (await DeactivateAsync(admin, member.Id)).StatusCode);
        var list = await admin.GetStringAsync("/team");
        Assert.Contains($"{member.Email} is deactivated", list);
        Assert.Contains($"data-member=\"{member.Email}\" data-access=\"Deactivated\"", list);

        // The open session is sent to sign in at its very next request; the API token is refused; sign-in says why.
        var next = await session.GetAsync("/tokens");
        Assert.Equal(HttpStatusCode.Redirect, next.StatusCode);
        Assert.StartsWith("/login", next.Headers.Location!.PathAndQuery);
        Assert.Equal(HttpStatusCode.Unauthorized, (await member.Client.GetAsync("/api/messages")).StatusCode);
        var anew = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Contains("closed by an administrator", await (await SignInTests.PostLoginAsync(anew, new() { ["Email"] = member.Email, ["Password"] = Password })).Content.ReadAsStringAsync());

        // Nothing of theirs is gone: the message is still the team's, under their name.
        Assert.True(app.WithDb(db => db.Messages.Any(m => m.Id == message && m.UserId == member.Id && m.TeamId == member.TeamId)));
        Assert.True(app.WithDb(db => db.Users.Any(u => u.Id == member.Id && u.TeamId == member.TeamId)));

        // Reactivated: the same password and the same token work again.
        Assert.Equal(HttpStatusCode.Redirect, (await ReactivateAsync(admin, member.Id)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await member.Client.GetAsync("/api/messages")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await (await SignedInAsync(member.Email)).GetAsync("/tokens")).StatusCode);
    }

    static async Task Until(Func<bool> done, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, what + " did not happen in time");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_deactivated_members_mailbox_is_no_longer_watched_until_they_are_reactivated()
    {
        var team = NewTeam();
        var (_, admin) = await AdminAsync(team);
        var member = await app.NewUserAsync(team: team, password: Password);
        var mailbox = Guid.NewGuid();
        await app.WithDbAsync(async db =>
        {
            db.Mailboxes.Add(new MailboxConnection
            {
                Id = mailbox, TeamId = member.TeamId, UserId = member.Id, Kind = MailboxKind.Imap, Address = member.Email,
                Status = MailboxStatus.Active, ProtectedSecret = "unused", CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        await Until(() => app.Watch.IsWatching(mailbox), "the watch of the member's mailbox");

        Assert.Equal(HttpStatusCode.Redirect, (await DeactivateAsync(admin, member.Id)).StatusCode);
        await Until(() => !app.Watch.IsWatching(mailbox), "the end of the deactivated member's watch");
        // The connection itself is kept as it was, to be watched again.
        Assert.Equal(MailboxStatus.Active, app.WithDb(db => db.Mailboxes.Single(m => m.Id == mailbox).Status));

        Assert.Equal(HttpStatusCode.Redirect, (await ReactivateAsync(admin, member.Id)).StatusCode);
        await Until(() => app.Watch.IsWatching(mailbox), "the watch of the reactivated member's mailbox");
    }

    [Fact]
    public async Task An_admin_sees_and_changes_only_their_own_team()
    {
        var (_, admin) = await AdminAsync(NewTeam());
        var team = NewTeam();
        var (stranger, _) = await AdminAsync(team);
        var strangersMember = await app.NewUserAsync(team: team, password: Password);

        Assert.DoesNotContain(stranger.Email, await admin.GetStringAsync("/team"));
        Assert.Equal(HttpStatusCode.NotFound, (await DeactivateAsync(admin, strangersMember.Id)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await RoleAsync(admin, strangersMember.Id, "Admin")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await RoleAsync(admin, stranger.Id, "Member")).StatusCode);
        Assert.Null(Row(strangersMember.Id).LockoutEnd);
        Assert.Equal(TeamRole.Member, Row(strangersMember.Id).Role);
        Assert.Equal(TeamRole.Admin, Row(stranger.Id).Role);
        Assert.Equal(HttpStatusCode.NotFound, (await ReactivateAsync(admin, Guid.NewGuid())).StatusCode);
    }
}

/// <summary>A mailbox watch that only records which mailboxes are being watched (nothing is connected to).</summary>
public sealed class RecordingWatch : IMailboxWatch
{
    readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, byte> running = new();

    public bool IsWatching(Guid connectionId) => running.ContainsKey(connectionId);

    public async Task RunAsync(Guid connectionId, CancellationToken ct)
    {
        running[connectionId] = 0;
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        finally
        {
            running.TryRemove(connectionId, out _);
        }
    }
}

/// <summary>The server with IMAP mailboxes watched by <see cref="RecordingWatch"/>.</summary>
public abstract class TeamPageApp(DatabaseProvider provider) : AppFactory(provider)
{
    public RecordingWatch Watch { get; } = new();

    protected override void Configure(IWebHostBuilder builder) =>
        builder.ConfigureServices(s => s.AddKeyedScoped<IMailboxWatch>(MailboxKind.Imap, (_, _) => Watch));
}

public sealed class TeamPageSqliteApp() : TeamPageApp(DatabaseProvider.Sqlite);

public sealed class TeamPagePostgresApp() : TeamPageApp(DatabaseProvider.Postgres);

public sealed class TeamPageOnSqlite(TeamPageSqliteApp app) : TeamPageTests(app), IClassFixture<TeamPageSqliteApp>;

public sealed class TeamPageOnPostgres(TeamPagePostgresApp app) : TeamPageTests(app), IClassFixture<TeamPagePostgresApp>;
