using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>A server of the reset tests on the database of another (as a second instance, or that one restarted).</summary>
public sealed class PasswordResetInstance(DatabaseProvider db, string? connectionString = null, FakeTimeProvider? clock = null)
    : PasswordResetApp(db, connectionString, clock);

/// <summary>
/// The reset request limits are counted in the database: every instance on it shares them, a restart keeps them, two
/// instances racing cannot both pass the last allowed request, and a flood of new addresses and clients cannot grow the
/// count without end.
/// </summary>
public abstract class PasswordResetLimitTests(DatabaseProvider provider)
{
    static string NewAddress(string prefix = "nobody") => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 11)] + "@sender.test";

    static string NewIp() => $"10.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}.{Random.Shared.Next(1, 255)}";

    static async Task<HttpStatusCode> AskAsync(AppFactory server, string ip, string email)
    {
        var browser = server.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        browser.DefaultRequestHeaders.Add("X-Test-Remote-Ip", ip);
        return (await PasswordResetTests.AskAsync(browser, email)).StatusCode;
    }

    static async Task StopAsync(AppFactory server) => await ((IAsyncLifetime)server).DisposeAsync();

    [Fact]
    public async Task Two_instances_on_one_database_share_the_limits_and_a_restart_keeps_them()
    {
        var first = new PasswordResetInstance(provider);
        var second = new PasswordResetInstance(provider, first.ConnectionString, first.Clock);
        PasswordResetInstance? restarted = null;
        try
        {
            // Three an hour for an address, asked of either instance.
            var address = NewAddress();
            Assert.Equal(HttpStatusCode.OK, await AskAsync(first, NewIp(), address));
            Assert.Equal(HttpStatusCode.OK, await AskAsync(second, NewIp(), address));
            Assert.Equal(HttpStatusCode.OK, await AskAsync(first, NewIp(), address));
            Assert.Equal((HttpStatusCode)429, await AskAsync(second, NewIp(), address));
            Assert.Equal((HttpStatusCode)429, await AskAsync(first, NewIp(), address));

            // Ten an hour for a client, whichever instance it reaches.
            var client = NewIp();
            for (var i = 0; i < PasswordResetLimits.PerClientPerHour; i++)
                Assert.Equal(HttpStatusCode.OK, await AskAsync(i % 2 == 0 ? first : second, client, NewAddress()));
            Assert.Equal((HttpStatusCode)429, await AskAsync(first, client, NewAddress()));
            Assert.Equal((HttpStatusCode)429, await AskAsync(second, client, NewAddress()));

            // A restart starts nothing over.
            await StopAsync(second);
            restarted = new PasswordResetInstance(provider, first.ConnectionString, first.Clock);
            Assert.Equal((HttpStatusCode)429, await AskAsync(restarted, NewIp(), address));
            Assert.Equal((HttpStatusCode)429, await AskAsync(restarted, client, NewAddress()));

            // An hour later both may ask again, on either instance.
            first.Clock.Advance(TimeSpan.FromMinutes(61));
            Assert.Equal(HttpStatusCode.OK, await AskAsync(restarted, NewIp(), address));
            Assert.Equal(HttpStatusCode.OK, await AskAsync(first, client, NewAddress()));
        }
        finally
        {
            if (restarted is not null) await StopAsync(restarted);
            else await StopAsync(second);
            await StopAsync(first);
        }
    }

    [Fact]
    public async Task Requests_racing_on_two_instances_pass_no_more_than_the_limits()
    {
        var first = new PasswordResetInstance(provider);
        var second = new PasswordResetInstance(provider, first.ConnectionString, first.Clock);
        try
        {
            var limits = new[] { first.Services.GetRequiredService<PasswordResetLimits>(), second.Services.GetRequiredService<PasswordResetLimits>() };
            // Warm both up (connections, the upkeep), so that the requests below start together.
            await Task.WhenAll(limits.Select(l => l.TakeAsync(NewAddress(), IPAddress.Parse(NewIp()))));

            for (var round = 0; round < 5; round++)
            {
                // One address from many clients: three of forty pass.
                var address = NewAddress();
                var byAddress = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => limits[i % 2].TakeAsync(address, IPAddress.Parse(NewIp())))));
                Assert.Equal(PasswordResetLimits.PerAddressPerHour, byAddress.Count(w => w is null));

                // One client for many addresses: ten of forty pass.
                var client = IPAddress.Parse(NewIp());
                var byClient = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => limits[i % 2].TakeAsync(NewAddress(), client))));
                Assert.Equal(PasswordResetLimits.PerClientPerHour, byClient.Count(w => w is null));
            }
        }
        finally
        {
            await StopAsync(second);
            await StopAsync(first);
        }
    }

    [Fact]
    public async Task A_flood_of_new_addresses_from_new_clients_is_refused_once_the_table_holds_its_most_and_eases_a_day_later()
    {
        var server = new PasswordResetInstance(provider);
        try
        {
            var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
            var limits = new PasswordResetLimits(server.Services.GetRequiredService<IServiceScopeFactory>(), clock, NullLogger<PasswordResetLimits>.Instance) { MaxRows = 10 };
            static IPAddress Client(int i) => IPAddress.Parse($"2001:db8:{i:x}::1");
            int Rows() => server.WithDb(db => db.PasswordResetRequests.Count());

            // Each request taken counts a row for its address and one for its client: five fill ten.
            for (var i = 0; i < 5; i++) Assert.Null(await limits.TakeAsync($"person{i}@example.com", Client(i)));
            Assert.Equal(PasswordResetLimits.FloodWait, await limits.TakeAsync("person5@example.com", Client(5)));
            // A new address from a client already counted waits too, and so does a counted address from a new client.
            Assert.Equal(PasswordResetLimits.FloodWait, await limits.TakeAsync("person5@example.com", Client(0)));
            Assert.Equal(PasswordResetLimits.FloodWait, await limits.TakeAsync("person0@example.com", Client(5)));
            Assert.Equal(10, Rows());
            // What is counted already is still answered by its own limits: a second request for the first address.
            Assert.Null(await limits.TakeAsync("person0@example.com", Client(0)));

            // A day later the old rows are deleted, and new addresses are taken again.
            clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
            Assert.Null(await limits.TakeAsync("person5@example.com", Client(5)));
            Assert.Equal(2, Rows());
        }
        finally
        {
            await StopAsync(server);
        }
    }
}

public sealed class PasswordResetLimitsOnSqlite() : PasswordResetLimitTests(DatabaseProvider.Sqlite);

public sealed class PasswordResetLimitsOnPostgres() : PasswordResetLimitTests(DatabaseProvider.Postgres);
