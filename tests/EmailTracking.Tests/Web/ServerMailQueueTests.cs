using System.Net;
using System.Net.Http.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
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
            first.Clock.Advance(ServerMailQueue.RetryDelays[0]);
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
            server.Clock.Advance(ServerMailQueue.RetryDelays[0]);
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
            server.Clock.Advance(ServerMailQueue.RetryDelays[0]);
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
}

public sealed class ServerMailQueueOnSqlite() : ServerMailQueueTests(DatabaseProvider.Sqlite);

public sealed class ServerMailQueueOnPostgres() : ServerMailQueueTests(DatabaseProvider.Postgres);
