using System.Net;
using System.Net.Http.Headers;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.RealServer;

/// <summary>
/// `et`'s account commands apply what the Team page applies: the Solo plan's one member, deactivation and reactivation
/// with the same guard (the team keeps an admin who can sign in), and `users list` shows who can sign in how.
/// </summary>
public abstract class CliAccountsTests : IDisposable
{
    protected readonly string dir = Directory.CreateTempSubdirectory("et-cli-accounts-").FullName;

    protected abstract Dictionary<string, string> Settings { get; }

    protected abstract DatabaseProvider Provider { get; }

    /// <summary>The database the commands use, for what no command does (an invitation is the Team page's).</summary>
    AppDbContext Db()
    {
        var options = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(options, Provider, Settings["ConnectionStrings__Default"]);
        return new AppDbContext(options.Options);
    }

    async Task InvitedAsync(string email, DateTimeOffset at)
    {
        await using var db = Db();
        await db.Users.Where(u => u.Email == email).ExecuteUpdateAsync(s => s.SetProperty(u => u.InvitedAt, at));
    }

    const string Password = "Grid-runner-1982";

    Task<(int Code, string Out, string Err)> Et(params string[] args) => ServerProcess.RunCliAsync(dir, Settings, args);

    async Task<string> AddAsync(params string[] args)
    {
        var (code, stdout, stderr) = await Et(["users", "add", .. args]);
        Assert.True(code == 0, stderr);
        return stdout.Trim();
    }

    async Task<string[]> ListAsync()
    {
        var (code, stdout, stderr) = await Et("users", "list");
        Assert.True(code == 0, stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task Tokens_create_refuses_a_name_longer_than_a_token_keeps_and_makes_none()
    {
        await AddAsync("--email", "sark@encom.test", "--team", "Sark");
        var refused = await Et("tokens", "create", "--email", "sark@encom.test", "--name", new string('n', 150));
        Assert.Equal(2, refused.Code);
        Assert.Contains("error: A token's name is at most 100 characters.", refused.Err);
        Assert.Equal("", refused.Out);
        await using var db = Db();
        Assert.Equal(1, await db.ApiTokens.CountAsync(t => t.User!.Email == "sark@encom.test"));
        var made = await Et("tokens", "create", "--email", "sark@encom.test", "--name", new string('n', 100));
        Assert.True(made.Code == 0, made.Err);
        Assert.StartsWith("et_", made.Out.Trim());
    }

    [Fact]
    public async Task Commands_find_a_team_by_its_name_in_any_case_and_never_make_a_second_one()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom");
        // Refused as a second member of the solo team, as the exact name is, and the message names the team there is.
        var refused = await Et("users", "add", "--email", "alan@encom.test", "--team", "encom");
        Assert.Equal(2, refused.Code);
        Assert.Contains("error: Team 'Encom' is on the Solo plan, which has one member.", refused.Err);
        Assert.Contains("et teams plan --team \"Encom\" --plan team", refused.Err);
        Assert.Equal("", refused.Out);

        var plan = await Et("teams", "plan", "--team", "ENCOM", "--plan", "team");
        Assert.True(plan.Code == 0, plan.Err);
        Assert.Contains("Team 'Encom' is now on the team plan.", plan.Err);
        var joined = await Et("users", "add", "--email", "alan@encom.test", "--team", " encom ");
        Assert.True(joined.Code == 0, joined.Err);
        Assert.Contains("Created alan@encom.test (member) in team 'Encom' on the team plan.", joined.Err);
        var outbox = await Et("outbox", "list", "--team", "eNCOM");
        Assert.True(outbox.Code == 0, outbox.Err);

        await using var db = Db();
        var team = Assert.Single(await db.Teams.AsNoTracking().ToListAsync());
        Assert.Equal(("Encom", Plan.Team), (team.Name, team.Plan));
        Assert.Equal(["alan@encom.test", "flynn@encom.test"], await db.Users.Where(u => u.TeamId == team.Id).Select(u => u.Email!).OrderBy(e => e).ToListAsync());
    }

    [Fact]
    public async Task Users_add_refuses_a_second_member_of_a_solo_team_until_it_is_on_the_team_plan()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom");
        var refused = await Et("users", "add", "--email", "Alan@Encom.test", "--team", "Encom");
        Assert.Equal(2, refused.Code);
        Assert.Contains("error: Team 'Encom' is on the Solo plan, which has one member.", refused.Err);
        Assert.Contains("--plan team", refused.Err);
        Assert.Contains("et teams plan --team \"Encom\" --plan team", refused.Err);
        // Nothing was made: no token printed, no user, and the address is still free.
        Assert.Equal("", refused.Out);
        Assert.DoesNotContain(await ListAsync(), l => l.StartsWith("alan@", StringComparison.Ordinal));

        // Moved to the team plan in the same command, the team takes the member.
        await AddAsync("--email", "alan@encom.test", "--team", "Encom", "--plan", "team");
        // Back on the solo plan (two members stay), it takes no third; `teams plan` opens it again.
        Assert.Equal(0, (await Et("teams", "plan", "--team", "Encom", "--plan", "solo")).Code);
        Assert.Equal(2, (await Et("users", "add", "--email", "lora@encom.test", "--team", "Encom")).Code);
        Assert.Equal(0, (await Et("teams", "plan", "--team", "Encom", "--plan", "team")).Code);
        await AddAsync("--email", "lora@encom.test", "--team", "Encom");
    }

    /// <summary>
    /// `teams plan --plan 7` stored a plan that does not exist, which every "team plan or above" check (documents, the
    /// Outlook add-in's) then took for the team plan.
    /// </summary>
    [Fact]
    public async Task Teams_plan_refuses_a_plan_that_does_not_exist_and_keeps_the_one_the_team_has()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom");
        var refused = await Et("teams", "plan", "--team", "Encom", "--plan", "7");
        Assert.Equal(2, refused.Code);
        Assert.Contains("error: 7 is not a plan", refused.Err);
        await using var db = Db();
        Assert.Equal(Plan.Solo, (await db.Teams.SingleAsync(t => t.Name == "Encom")).Plan);
    }

    /// <summary>
    /// `outbox replay --delivery ID` answered "0 dead letters go again" with success for an id that is not the team's
    /// (a typo, another team's delivery) or a delivery that is not dead: the operator took it as done.
    /// </summary>
    [Fact]
    public async Task Outbox_replay_of_one_delivery_says_when_it_is_not_the_teams_or_not_dead()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom");
        await AddAsync("--email", "sark@other.test", "--team", "Other");
        var now = DateTimeOffset.UtcNow;
        long dead, delivered, othersDead;
        await using (var db = Db())
        {
            var encom = (await db.Teams.SingleAsync(t => t.Name == "Encom")).Id;
            var other = (await db.Teams.SingleAsync(t => t.Name == "Other")).Id;
            OutboxDelivery Row(Guid team, DeliveryState state) => new()
            {
                TeamId = team, TargetKind = "webhook", TargetId = Guid.NewGuid(), EventType = "open", IdempotencyKey = Guid.NewGuid().ToString("N"),
                Payload = "{}", State = state, Attempts = 18, CreatedAt = now, NextAttemptAt = now, LastError = "503 Service Unavailable",
            };
            var rows = new[] { Row(encom, DeliveryState.Dead), Row(encom, DeliveryState.Delivered), Row(other, DeliveryState.Dead) };
            db.OutboxDeliveries.AddRange(rows);
            await db.SaveChangesAsync();
            (dead, delivered, othersDead) = (rows[0].Id, rows[1].Id, rows[2].Id);
        }

        foreach (var id in new[] { 999_999, othersDead })
        {
            var missing = await Et("outbox", "replay", "--team", "Encom", "--delivery", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(missing.Code == 2, missing.Err);
            Assert.Contains($"error: team 'Encom' has no delivery {id}", missing.Err);
        }
        var notDead = await Et("outbox", "replay", "--team", "Encom", "--delivery", delivered.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(notDead.Code == 2, notDead.Err);
        Assert.Contains($"error: delivery {delivered} is delivered, not dead", notDead.Err);
        var replayed = await Et("outbox", "replay", "--team", "Encom", "--delivery", dead.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(replayed.Code == 0, replayed.Err);
        Assert.Contains("1 dead letter goes again", replayed.Err);

        await using var after = Db();
        var states = await after.OutboxDeliveries.ToDictionaryAsync(d => d.Id, d => d.State);
        Assert.Equal(DeliveryState.Pending, states[dead]);
        Assert.Equal(DeliveryState.Delivered, states[delivered]);
        Assert.Equal(DeliveryState.Dead, states[othersDead]);
    }

    /// <summary>
    /// `mail list` is tab-separated, and its last column is the relay's own answer: a tab in it made an eighth column
    /// and an ESC in it drove the terminal (`outbox list` already printed its errors as one clean line).
    /// </summary>
    [Fact]
    public async Task Mail_list_prints_a_relays_answer_as_one_field_without_control_characters()
    {
        Assert.Equal(0, (await Et("migrate")).Code);
        var now = DateTimeOffset.UtcNow;
        await using (var db = Db())
        {
            db.ServerMails.Add(new ServerMail
            {
                Kind = ServerMail.PasswordReset, Recipient = "flynn@encom.test", State = ServerMailState.Failed, Attempts = 5, CreatedAt = now,
                NextAttemptAt = now, LastError = "554 5.7.1\trejected\u001b[2J by\r\npolicy",
            });
            await db.SaveChangesAsync();
        }

        var (code, stdout, stderr) = await Et("mail", "list");
        Assert.True(code == 0, stderr);
        var fields = Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Split('\t');
        Assert.Equal(7, fields.Length);
        Assert.Equal(["failed", "flynn@encom.test", ServerMail.PasswordReset, "5", "-"], fields[1..6]);
        Assert.Equal("554 5.7.1 rejected[2J by policy", fields[6]);
    }

    [Fact]
    public async Task Users_list_shows_access_and_web_password_after_the_columns_it_had()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom", "--plan", "team", "--password", Password);
        await AddAsync("--email", "alan@encom.test", "--team", "Encom");
        var lines = await ListAsync();
        // The four columns scripts read stay first and as they were.
        Assert.Contains("flynn@encom.test\tadmin\tEncom\tteam\tactive\tpassword\t-", lines);
        Assert.Contains("alan@encom.test\tmember\tEncom\tteam\tactive\tno-password\t-", lines);
        Assert.All(lines, l => Assert.Equal(7, l.Split('\t').Length));

        // No password, no API token, no invitation on record, never in: the Team page's "not signed in yet" (a member
        // invited before invitations were recorded), who has no way in, not "the add-ins and API tokens only".
        await AddAsync("--email", "lora@encom.test", "--team", "Encom");
        await using (var db = Db())
        {
            await db.ApiTokens.Where(t => t.User!.Email == "lora@encom.test").ExecuteDeleteAsync();
        }
        lines = await ListAsync();
        Assert.Contains("lora@encom.test\tmember\tEncom\tteam\tactive\tnot-signed-in-yet\t-", lines);
        Assert.Contains("alan@encom.test\tmember\tEncom\tteam\tactive\tno-password\t-", lines);
        Assert.All(lines, l => Assert.Equal(7, l.Split('\t').Length));
        // Once mailed an invitation, the invitation column says so and the password column is the page's again.
        await InvitedAsync("lora@encom.test", DateTimeOffset.UtcNow - TimeSpan.FromDays(1));
        Assert.Contains("lora@encom.test\tmember\tEncom\tteam\tactive\tno-password\tinvited", await ListAsync());

        // Mailed an invitation from the Team page: pending for its lifetime (7 days), then expired.
        await InvitedAsync("alan@encom.test", DateTimeOffset.UtcNow - TimeSpan.FromDays(1));
        Assert.Contains("alan@encom.test\tmember\tEncom\tteam\tactive\tno-password\tinvited", await ListAsync());
        await InvitedAsync("alan@encom.test", DateTimeOffset.UtcNow - TimeSpan.FromDays(8));
        Assert.Contains("alan@encom.test\tmember\tEncom\tteam\tactive\tno-password\tinvitation-expired", await ListAsync());
        await InvitedAsync("alan@encom.test", DateTimeOffset.UtcNow - TimeSpan.FromDays(1));

        Assert.Equal(0, (await Et("users", "deactivate", "--email", "alan@encom.test")).Code);
        // Deactivating ends the invitation: its link no longer works.
        Assert.Contains("alan@encom.test\tmember\tEncom\tteam\tdeactivated\tno-password\trevoked", await ListAsync());
    }

    [Fact]
    public async Task Users_deactivate_and_reactivate_close_and_reopen_every_way_in_and_keep_an_admin_who_can_sign_in()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom", "--plan", "team", "--password", Password);
        // Stored with its domain in punycode, named below with it in Unicode: one address.
        var zoe = await AddAsync("--email", "zoe@xn--r8jz45g.jp", "--team", "Encom", "--password", Password);

        var off = await Et("users", "deactivate", "--email", "Zoe@例え.jp");
        Assert.True(off.Code == 0, off.Err);
        Assert.Contains("Deactivated zoe@xn--r8jz45g.jp", off.Err);
        Assert.Contains("zoe@xn--r8jz45g.jp\tmember\tEncom\tteam\tdeactivated\tpassword\t-", await ListAsync());
        var again = await Et("users", "deactivate", "--email", "zoe@xn--r8jz45g.jp");
        Assert.Equal(0, again.Code);
        Assert.Contains("was already deactivated", again.Err);

        // The team's only admin who can sign in stays: refused, with what to do instead.
        var last = await Et("users", "deactivate", "--email", "flynn@encom.test");
        Assert.Equal(2, last.Code);
        Assert.Contains("error: flynn@encom.test is the team's only admin who can sign in", last.Err);
        Assert.Contains("et users add", last.Err);
        Assert.Contains("flynn@encom.test\tadmin\tEncom\tteam\tactive\tpassword\t-", await ListAsync());
        // An admin without a password cannot sign in either: they do not count.
        await AddAsync("--email", "ram@encom.test", "--team", "Encom", "--role", "admin");
        Assert.Equal(2, (await Et("users", "deactivate", "--email", "flynn@encom.test")).Code);

        var nobody = await Et("users", "deactivate", "--email", "nobody@encom.test");
        Assert.Equal(2, nobody.Code);
        Assert.Contains("error: no user nobody@encom.test", nobody.Err);
        var notAddress = await Et("users", "reactivate", "--email", "not an address");
        Assert.Equal(2, notAddress.Code);
        Assert.Contains("is not an email address", notAddress.Err);

        // Against the server: the deactivated user's token and password are refused, and work again once reactivated.
        await using var server = await ServerProcess.StartAsync(dir, Settings);
        using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", zoe);
        Assert.Equal(HttpStatusCode.Unauthorized, (await api.GetAsync("/api/me")).StatusCode);
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(server.BaseUrl) };
        var closed = await EmailTracking.Tests.Web.SignInTests.PostLoginAsync(browser, new() { ["Email"] = "zoe@xn--r8jz45g.jp", ["Password"] = Password });
        Assert.Contains("closed by an administrator", await closed.Content.ReadAsStringAsync());

        var on = await Et("users", "reactivate", "--email", "ZOE@XN--R8JZ45G.JP");
        Assert.True(on.Code == 0, on.Err);
        Assert.Contains("Reactivated zoe@xn--r8jz45g.jp", on.Err);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/me")).StatusCode);
        Assert.Contains("zoe@xn--r8jz45g.jp\tmember\tEncom\tteam\tactive\tpassword\t-", await ListAsync());
        Assert.Contains("was not deactivated", (await Et("users", "reactivate", "--email", "zoe@xn--r8jz45g.jp")).Err);
    }

    [Fact]
    public async Task Users_role_changes_a_role_and_keeps_an_admin_who_can_sign_in()
    {
        await AddAsync("--email", "flynn@encom.test", "--team", "Encom", "--plan", "team", "--password", Password);
        await AddAsync("--email", "zoe@xn--r8jz45g.jp", "--team", "Encom", "--password", Password);
        // The only admin who can sign in stays one: refused, with what to do instead, nothing changed.
        var last = await Et("users", "role", "--email", "flynn@encom.test", "--role", "member");
        Assert.Equal(2, last.Code);
        Assert.Contains("error: flynn@encom.test is the team's only admin who can sign in", last.Err);
        Assert.Contains(await ListAsync(), l => l.StartsWith("flynn@encom.test\tadmin\tEncom", StringComparison.Ordinal));
        // An admin without a password does not count.
        await AddAsync("--email", "ram@encom.test", "--team", "Encom", "--role", "admin");
        Assert.Equal(2, (await Et("users", "role", "--email", "flynn@encom.test", "--role", "member")).Code);

        var up = await Et("users", "role", "--email", "Zoe@例え.jp", "--role", "admin");
        Assert.True(up.Code == 0, up.Err);
        Assert.Contains("zoe@xn--r8jz45g.jp is now an admin.", up.Err);
        Assert.Contains("was an admin already", (await Et("users", "role", "--email", "zoe@xn--r8jz45g.jp", "--role", "Admin")).Err);
        var down = await Et("users", "role", "--email", "flynn@encom.test", "--role", "member");
        Assert.True(down.Code == 0, down.Err);
        var lines = await ListAsync();
        Assert.Contains("flynn@encom.test\tmember\tEncom\tteam\tactive\tpassword\t-", lines);
        Assert.Contains("zoe@xn--r8jz45g.jp\tadmin\tEncom\tteam\tactive\tpassword\t-", lines);

        var bad = await Et("users", "role", "--email", "zoe@xn--r8jz45g.jp", "--role", "owner");
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("owner", bad.Err);
        var nobody = await Et("users", "role", "--email", "nobody@encom.test", "--role", "admin");
        Assert.Equal(2, nobody.Code);
        Assert.Contains("error: no user nobody@encom.test", nobody.Err);

        // A password the operator set is changed at the user's first web sign-in.
        await using var server = await ServerProcess.StartAsync(dir, Settings);
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(server.BaseUrl) };
        var signIn = await EmailTracking.Tests.Web.SignInTests.PostLoginAsync(browser, new() { ["Email"] = "zoe@xn--r8jz45g.jp", ["Password"] = Password });
        Assert.Equal("/password", signIn.Headers.Location?.OriginalString);
    }

    [Fact]
    public async Task Every_command_that_names_a_user_finds_them_with_their_domain_written_either_way()
    {
        // Stored with its domain in punycode; named with it in Unicode, as a person types it.
        await AddAsync("--email", "zoe@xn--r8jz45g.jp", "--team", "Encom");
        var token = await Et("tokens", "create", "--email", "Zoe@例え.jp");
        Assert.True(token.Code == 0, token.Err);
        Assert.Matches("^et_", token.Out);
        var password = await ServerProcess.RunCliWithInputAsync(dir, Settings, Password + "\n", "users", "set-password", "--email", "zoe@例え.jp");
        Assert.True(password.Code == 0, password.Err);
        Assert.Contains("zoe@xn--r8jz45g.jp\tadmin\tEncom\tsolo\tactive\tpassword\t-", await ListAsync());
        var confirmed = await Et("users", "confirm-address", "--email", "zoe@例え.jp", "--address", "sales@encom.test");
        Assert.True(confirmed.Code == 0, confirmed.Err);
        var unlinked = await Et("users", "unlink-microsoft", "--email", "zoe@例え.jp");
        Assert.True(unlinked.Code == 0, unlinked.Err);
        Assert.Contains("zoe@xn--r8jz45g.jp had no Microsoft account bound", unlinked.Err);
        // Not a user either way: said so.
        var nobody = await Et("tokens", "create", "--email", "nobody@例え.jp");
        Assert.Equal(2, nobody.Code);
        Assert.Contains("error: no user", nobody.Err);
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}

[Collection(CommandLineCollection.Name)]
public sealed class CliAccountsOnSqlite : CliAccountsTests
{
    protected override Dictionary<string, string> Settings => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["ConnectionStrings__Default"] = $"Data Source={Path.Combine(dir, "cli.db")}",
    };

    protected override DatabaseProvider Provider => DatabaseProvider.Sqlite;
}

[Collection(CommandLineCollection.Name)]
public sealed class CliAccountsOnPostgres : CliAccountsTests
{
    readonly string connectionString = TestPostgres.CreateDatabase();

    protected override Dictionary<string, string> Settings => new()
    {
        ["Database__Provider"] = "Postgres",
        ["ConnectionStrings__Default"] = connectionString,
    };

    protected override DatabaseProvider Provider => DatabaseProvider.Postgres;
}
