using System.Net;
using System.Net.Http.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The server's own mail waits in the database for the relay: a restart does not lose it, two instances on one
/// database send it once, a refusal for good ends it at once with the reason kept, and old rows go.
/// </summary>
public abstract class ServerMailQueueTests(DatabaseProvider provider)
{
    const string Password = "Queued-Mail-Password-1";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>A database no test server owns, so that one server on it can stop and another start over it.</summary>
    string NewDatabase()
    {
        if (provider == DatabaseProvider.Postgres) return TestPostgres.CreateDatabase();
        return $"Data Source={Path.Combine(Directory.CreateTempSubdirectory("et-mailq-").FullName, "et.db")}";
    }

    static async Task StopAsync(AppFactory server) => await ((IAsyncLifetime)server).DisposeAsync();

    static async Task AskResetAsync(AppFactory server, string email)
    {
        var browser = server.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        browser.DefaultRequestHeaders.Add("X-Test-Remote-Ip", $"10.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}.{Random.Shared.Next(1, 255)}");
        Assert.Equal(HttpStatusCode.OK, (await PasswordResetTests.AskAsync(browser, email)).StatusCode);
    }

    static ServerMail? Row(AppFactory server, Guid userId) =>
        server.WithDb(db => db.ServerMails.AsNoTracking().Where(m => m.UserId == userId).OrderByDescending(m => m.Id).FirstOrDefault());

    static ServerMailWorker Worker(AppFactory server) => server.Services.GetServices<IHostedService>().OfType<ServerMailWorker>().Single();

    static async Task WaitForAsync(Func<bool> done, string what)
    {
        var until = DateTime.UtcNow + Patience;
        while (!done())
        {
            Assert.True(DateTime.UtcNow < until, what);
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_mail_queued_while_the_relay_is_down_goes_after_a_restart_once_the_relay_is_back()
    {
        var database = NewDatabase();
        var first = new PasswordResetInstance(provider, database);
        PasswordResetInstance? restarted = null;
        try
        {
            var user = await first.NewUserAsync(password: Password);
            // The relay is down: every connection is closed unanswered.
            first.Relay.DropConnections(1_000_000);
            await AskResetAsync(first, user.Email);
            await WaitForAsync(() => Row(first, user.Id) is { State: ServerMailState.Pending, Attempts: 1 }, "the first try was not made");
            Assert.Contains("the relay could not be reached", Row(first, user.Id)!.LastError);

            // The server stops before the next try, and starts again on the same database, its relay back.
            await StopAsync(first);
            restarted = new PasswordResetInstance(provider, database, first.Clock);
            var due = Row(restarted, user.Id)!.NextAttemptAt;
            await WaitForAsync(() => Worker(restarted).SleepingUntil is { } wake && wake <= due, "the restarted server is not waiting for the mail's next try");
            Assert.Empty(restarted.Relay.To(user.Email));
            first.Clock.Advance(SystemMailOptions.DefaultRetryDelays[0]);
            await WaitForAsync(() => restarted.Relay.To(user.Email).Count == 1, "the queued mail did not go after the restart");
            await WaitForAsync(() => Row(restarted, user.Id) is { State: ServerMailState.Sent, SentAt: not null }, "the row does not say the mail was sent");
            var row = Row(restarted, user.Id)!;
            Assert.Equal(2, row.Attempts);
            Assert.Null(row.LastError);
            Assert.Null(row.LeaseOwner);

            // Its link, made when it went, works.
            var mail = restarted.Relay.To(user.Email).Single();
            Assert.Matches(@"http://localhost/reset-password\?u=[0-9a-f]{32}&t=\S+", mail.TextBody);
            Assert.Empty(first.Relay.To(user.Email));
        }
        finally
        {
            if (restarted is not null) await StopAsync(restarted);
            else await StopAsync(first);
        }
    }

    [Fact]
    public async Task Two_instances_on_one_database_send_each_mail_once()
    {
        var first = new PasswordResetInstance(provider);
        var second = new PasswordResetInstance(provider, first.ConnectionString, first.Clock);
        try
        {
            _ = second.Server;
            var users = new List<TestUser>();
            for (var i = 0; i < 3; i++) users.Add(await first.NewUserAsync(password: Password));
            // More mails than one claim takes, all due at once, and both workers woken together.
            const int each = 15;
            var now = first.Clock.GetUtcNow();
            await first.WithDbAsync(async db =>
            {
                for (var n = 0; n < each; n++)
                    foreach (var u in users)
                        db.ServerMails.Add(new ServerMail { Kind = ServerMail.PasswordReset, Recipient = u.Email, CreatedAt = now, NextAttemptAt = now });
                await db.SaveChangesAsync();
            });
            first.Services.GetRequiredService<ServerMailSignal>().Poke();
            second.Services.GetRequiredService<ServerMailSignal>().Poke();
            var emails = users.Select(u => u.Email).ToList();
            await WaitForAsync(() => first.WithDb(db => db.ServerMails.Count(m => emails.Contains(m.Recipient) && m.State == ServerMailState.Sent)) == each * users.Count,
                "not every mail was sent");
            // Give a second sending of any of them time to arrive.
            await Task.Delay(500);
            foreach (var u in users)
                Assert.Equal(each, first.Relay.To(u.Email).Count + second.Relay.To(u.Email).Count);
            Assert.Equal(each * users.Count, first.WithDb(db => db.ServerMails.Where(m => emails.Contains(m.Recipient)).Sum(m => m.Attempts)));
        }
        finally
        {
            await StopAsync(second);
            await StopAsync(first);
        }
    }

    [Fact]
    public async Task A_refusal_for_good_ends_the_mail_at_once_with_its_reason_kept()
    {
        var server = new PasswordResetInstance(provider);
        try
        {
            var user = await server.NewUserAsync(password: Password);
            server.Relay.Refuse = true;
            await AskResetAsync(server, user.Email);
            await WaitForAsync(() => Row(server, user.Id) is { State: ServerMailState.Failed }, "the refused mail is not marked failed");
            var row = Row(server, user.Id)!;
            Assert.Equal(1, row.Attempts);
            Assert.Null(row.SentAt);
            Assert.Contains("the relay answered 554", row.LastError);
            Assert.True(server.Log.Has(LogLevel.Error, $"The relay refused the password reset mail for user {user.Id}, which is not tried again"));

            // Past every retry's wait, nothing is tried again.
            server.Clock.Advance(TimeSpan.FromHours(2));
            server.Services.GetRequiredService<ServerMailSignal>().Poke();
            await Task.Delay(300);
            Assert.Single(server.Relay.RefusedTo, r => r.Contains(user.Email));
            Assert.Equal(1, Row(server, user.Id)!.Attempts);
        }
        finally
        {
            await StopAsync(server);
        }
    }

    /// <summary>
    /// An invitation the relay refuses for now is not an error for the admin: it goes later, with a link made then. One
    /// that is no longer wanted by then (the member chose a password) does not go.
    /// </summary>
    [Fact]
    public async Task An_invitation_the_relay_refuses_for_now_goes_later_unless_the_member_chose_a_password_meanwhile()
    {
        var server = new PasswordResetInstance(provider);
        try
        {
            var invited = await server.NewUserAsync();
            var other = await server.NewUserAsync();
            server.Relay.Defer(invited.Email, 1);
            server.Relay.Defer(other.Email, 1);
            async Task InviteAsync(TestUser member)
            {
                using var scope = server.Services.CreateScope();
                var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<User>>();
                var user = await users.FindByIdAsync(member.Id.ToString());
                // No exception: the admin's page says the invitation is on its way.
                await scope.ServiceProvider.GetRequiredService<Invitations>().SendAsync(user!, "Queued Team", "admin@sender.test", CancellationToken.None);
            }
            await InviteAsync(invited);
            await InviteAsync(other);
            Assert.Equal((ServerMailState.Pending, 1), (Row(server, invited.Id)!.State, Row(server, invited.Id)!.Attempts));
            Assert.Contains("451", Row(server, invited.Id)!.LastError);

            // The other member chooses a password before the next try (another invitation's link, say).
            using (var scope = server.Services.CreateScope())
            {
                var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<User>>();
                var user = await users.FindByIdAsync(other.Id.ToString());
                Assert.True((await users.AddPasswordAsync(user!, Password)).Succeeded);
            }
            var due = Row(server, invited.Id)!.NextAttemptAt;
            await WaitForAsync(() => Worker(server).SleepingUntil is { } wake && wake <= due, "the worker is not waiting for the next try");
            server.Clock.Advance(SystemMailOptions.DefaultRetryDelays[0]);
            await WaitForAsync(() => server.Relay.To(invited.Email).Count == 1, "the deferred invitation did not go");
            Assert.Matches(@"http://localhost/accept-invitation\?u=[0-9a-f]{32}&t=\S+", server.Relay.To(invited.Email)[0].TextBody);
            await WaitForAsync(() => Row(server, other.Id) is { State: ServerMailState.Dropped }, "the unwanted invitation was not dropped");
            Assert.Contains("chosen a password", Row(server, other.Id)!.LastError);
            Assert.Empty(server.Relay.To(other.Email));
        }
        finally
        {
            await StopAsync(server);
        }
    }

    /// <summary>A confirmation mail the relay refuses for now is accepted (202), and goes at the next try.</summary>
    [Fact]
    public async Task A_confirmation_mail_the_relay_refuses_for_now_is_accepted_and_goes_later()
    {
        var server = new PasswordResetInstance(provider);
        try
        {
            var user = await server.NewUserAsync();
            var alias = $"alias-{Guid.NewGuid():N}"[..17] + "@claims.test";
            Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = alias })).StatusCode);
            server.Relay.Defer(alias, 1);
            Assert.Equal(HttpStatusCode.Accepted, (await user.Client.PostAsJsonAsync("/api/me/addresses/confirmation", new { address = alias })).StatusCode);
            var row = server.WithDb(db => db.ServerMails.AsNoTracking().Single(m => m.Recipient == alias));
            Assert.Equal((ServerMail.AddressConfirmation, ServerMailState.Pending, 1), (row.Kind, row.State, row.Attempts));
            await WaitForAsync(() => Worker(server).SleepingUntil is { } wake && wake <= row.NextAttemptAt, "the worker is not waiting for the next try");
            server.Clock.Advance(SystemMailOptions.DefaultRetryDelays[0]);
            await WaitForAsync(() => server.Relay.To(alias).Count == 1, "the deferred confirmation mail did not go");
            Assert.Contains("http://localhost/addresses/confirm?t=", server.Relay.To(alias)[0].TextBody);
        }
        finally
        {
            await StopAsync(server);
        }
    }

    [Fact]
    public async Task Mails_done_with_are_deleted_after_some_days_and_waiting_ones_are_kept()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var server = new PasswordResetInstance(provider, clock: clock);
        try
        {
            var user = await server.NewUserAsync(password: Password);
            await AskResetAsync(server, user.Email);
            await WaitForAsync(() => Row(server, user.Id) is { State: ServerMailState.Sent }, "the mail was not sent");
            var sentId = Row(server, user.Id)!.Id;
            // Another, asked for long ago, still waits for its next try.
            var waitingId = 0L;
            await server.WithDbAsync(async db =>
            {
                var row = new ServerMail
                {
                    Kind = ServerMail.PasswordReset, Recipient = user.Email, State = ServerMailState.Pending, Attempts = 1,
                    CreatedAt = clock.GetUtcNow() - TimeSpan.FromDays(30), NextAttemptAt = clock.GetUtcNow() + TimeSpan.FromDays(60),
                };
                db.ServerMails.Add(row);
                await db.SaveChangesAsync();
                waitingId = row.Id;
            });

            var keepFor = server.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<SystemMailOptions>>().Value.KeepFor;
            clock.Advance(keepFor - TimeSpan.FromMinutes(1));
            server.Services.GetRequiredService<ServerMailSignal>().Poke();
            await Task.Delay(300);
            Assert.True(server.WithDb(db => db.ServerMails.Any(m => m.Id == sentId)), "a sent mail was deleted before its time");
            clock.Advance(TimeSpan.FromHours(2));
            server.Services.GetRequiredService<ServerMailSignal>().Poke();
            await WaitForAsync(() => !server.WithDb(db => db.ServerMails.Any(m => m.Id == sentId)), "the old sent mail was not deleted");
            Assert.True(server.WithDb(db => db.ServerMails.Any(m => m.Id == waitingId)), "a mail still waiting for its next try was deleted");
        }
        finally
        {
            await StopAsync(server);
        }
    }
    [Fact]
    public async Task The_waits_are_the_configured_ones_each_lengthened_by_its_share_of_the_spread_and_the_last_ends_the_mail()
    {
        // Mail:RetryDelays 2 and 10 minutes, Mail:RetryJitter 0.5, and a random draw of 0.5: each wait is a quarter longer.
        var server = new SpreadRetryInstance(provider, draw: 0.5);
        try
        {
            var user = await server.NewUserAsync(password: Password);
            server.Relay.Defer(user.Email, 10);
            var asked = server.Clock.GetUtcNow();
            await AskResetAsync(server, user.Email);
            await WaitForAsync(() => Row(server, user.Id) is { State: ServerMailState.Pending, Attempts: 1 }, "the first try was not made");
            AssertAbout(asked + TimeSpan.FromMinutes(2.5), Row(server, user.Id)!.NextAttemptAt);
            Assert.True(server.Log.Has(LogLevel.Warning, $"The password reset mail for user {user.Id} is tried again in 00:02:30"));

            await WaitForAsync(() => Worker(server).SleepingUntil is not null, "the worker is not waiting for the next try");
            server.Clock.Advance(TimeSpan.FromMinutes(2.5));
            await WaitForAsync(() => Row(server, user.Id) is { State: ServerMailState.Pending, Attempts: 2 }, "the second try was not made");
            AssertAbout(asked + TimeSpan.FromMinutes(2.5 + 12.5), Row(server, user.Id)!.NextAttemptAt);

            // Two waits: the third try is the last.
            await WaitForAsync(() => Worker(server).SleepingUntil is not null, "the worker is not waiting for the last try");
            server.Clock.Advance(TimeSpan.FromMinutes(12.5));
            await WaitForAsync(() => Row(server, user.Id) is { State: ServerMailState.Failed, Attempts: 3 }, "the mail was not given up after the last wait");
        }
        finally
        {
            await StopAsync(server);
        }
    }

    [Theory]
    [InlineData("Mail:RetryDelays:0", "00:00:00", "Mail:RetryDelays:0 is 00:00:00: each wait is more than zero and at most a day")]
    [InlineData("Mail:RetryDelays:0", "2.00:00:00", "Mail:RetryDelays:0 is 2.00:00:00: each wait is more than zero and at most a day")]
    [InlineData("Mail:RetryJitter", "1.5", "Mail:RetryJitter is 1.5: a fraction from 0 (no spread) to 1")]
    public void A_server_with_retry_settings_that_make_no_sense_does_not_start_and_says_which(string key, string value, string expected)
    {
        using var server = new RetrySettingsInstance(provider, key, value);
        var ex = Assert.ThrowsAny<Exception>(() => server.CreateClient());
        var all = string.Join(" | ", Flatten(ex).Select(e => e.Message));
        Assert.Contains(expected, all);
    }

    [Fact]
    public async Task Mail_waiting_while_no_relay_is_configured_is_warned_of_at_start_and_listed_by_et_without_its_link()
    {
        var database = NewDatabase();
        var first = new PasswordResetInstance(provider, database);
        NoRelayInstance? unconfigured = null;
        try
        {
            var user = await first.NewUserAsync(password: Password);
            first.Relay.DropConnections(1_000_000);
            await AskResetAsync(first, user.Email);
            await WaitForAsync(() => Row(first, user.Id) is { State: ServerMailState.Pending, Attempts: 1 }, "the first try was not made");
            await StopAsync(first);

            // The relay's settings are gone: the mail waits, and the server says so as it starts.
            unconfigured = new NoRelayInstance(provider, database);
            _ = unconfigured.CreateClient();
            await WaitForAsync(() => unconfigured.Log.Has(LogLevel.Warning, "1 server mails (password resets, invitations, confirmations) wait for a relay, and none is configured"),
                "no warning at start");

            // A team admin sees it on the Team page; a team's member does not (the page is the admins').
            const string adminPassword = "Queued-Mail-Admin-1";
            var admin = await unconfigured.NewUserAsync(role: TeamRole.Admin, password: adminPassword);
            using (var browser = await WebSignIn.SignInAsync(unconfigured, admin.Email, adminPassword))
                Assert.Contains("id=\"server-mail-waiting\"", await browser.GetStringAsync("/team"));

            var settings = new Dictionary<string, string> { ["Database__Provider"] = unconfigured.Provider, ["ConnectionStrings__Default"] = unconfigured.ConnectionString };
            var dir = Directory.CreateTempSubdirectory("et-cli-").FullName;
            var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, settings, "mail", "list");
            Assert.True(code == 0, stderr);
            var line = Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            var fields = line.Split('\t');
            Assert.Equal(["pending", user.Email, ServerMail.PasswordReset, "1"], fields[1..5]);
            Assert.Matches(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", fields[5]);
            Assert.Contains("the relay could not be reached", fields[6]);
            Assert.DoesNotContain("http", stdout);
            Assert.Contains("no relay is configured", stderr);
        }
        finally
        {
            if (unconfigured is not null) await StopAsync(unconfigured);
        }
    }

    /// <summary>Equal to the millisecond: SQLite keeps times so.</summary>
    static void AssertAbout(DateTimeOffset expected, DateTimeOffset actual) =>
        Assert.True((expected - actual).Duration() < TimeSpan.FromMilliseconds(1), $"expected {expected:o}, was {actual:o}");

    static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            yield return x;
            if (x is AggregateException a) foreach (var inner in a.InnerExceptions.SelectMany(Flatten)) yield return inner;
        }
    }
}

/// <summary>A server whose mail waits are set (2 and 10 minutes) and spread by half at most, with a fixed random draw.</summary>
public sealed class SpreadRetryInstance(DatabaseProvider db, double draw) : PasswordResetApp(db)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("Mail:RetryDelays:0", "00:02:00");
        builder.UseSetting("Mail:RetryDelays:1", "00:10:00");
        builder.UseSetting("Mail:RetryJitter", "0.5");
        builder.ConfigureServices(s => s.AddKeyedSingleton<Random>(ServerMailQueue.JitterKey, new FixedRandom(draw)));
    }
}

/// <summary>A server on a given database without a relay, its log kept.</summary>
public sealed class NoRelayInstance(DatabaseProvider db, string connectionString) : AppFactory(db, connectionString)
{
    public LogCollector Log { get; } = new();

    protected override void Configure(IWebHostBuilder builder) => builder.ConfigureLogging(l => l.AddProvider(Log));
}

/// <summary>A server with one retry setting given.</summary>
public sealed class RetrySettingsInstance(DatabaseProvider db, string key, string value) : PasswordResetApp(db)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting(key, value);
    }
}

/// <summary>A random source that always draws the same number.</summary>
public sealed class FixedRandom(double draw) : Random
{
    public override double NextDouble() => draw;
    protected override double Sample() => draw;
}

public sealed class ServerMailQueueOnSqlite() : ServerMailQueueTests(DatabaseProvider.Sqlite);

public sealed class ServerMailQueueOnPostgres() : ServerMailQueueTests(DatabaseProvider.Postgres);
