using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Feed;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Api;

/// <summary>
/// GET /api/team/members reads the members' addresses, and whether those without a password ever came in, for the whole
/// team at once: a team of twelve costs the database as many commands as a team of two, and each member still gets their
/// own addresses, in their own order and states.
/// </summary>
public abstract class TeamMembersQueryCountTests(CountingApp app)
{
    const string Password = "Correct-horse-battery-9";

    /// <summary>
    /// A member with a confirmed address and an unconfirmed one; without a password (<paramref name="password"/> false),
    /// one whose coming in is asked about (their API token, never used, is theirs: they are not "not signed in yet").
    /// </summary>
    async Task<TestUser> MemberAsync(string team, TeamRole role = TeamRole.Member, bool password = true)
    {
        var user = await app.NewUserAsync(team: team, role: role, password: password ? Password : null);
        using var scope = app.Services.CreateScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        var local = user.Email.Split('@')[0];
        await accounts.LinkVerifiedAddressAsync(user.Id, $"{local}@confirmed.test");
        await accounts.AddAddressAsync(user.Id, $"{local}@alias.test");
        return user;
    }

    async Task<(int Commands, JsonElement Members)> ListAsync(TestUser admin, string name)
    {
        var members = await app.CountedClient(admin, name).GetJsonAsync("/api/team/members");
        return (app.Commands(name), members);
    }

    [Fact]
    public async Task Listing_a_team_of_twelve_takes_as_many_commands_as_a_team_of_two_and_each_member_has_their_own_addresses()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var admin = await MemberAsync(team, TeamRole.Admin);
        var first = await MemberAsync(team, password: false);
        // Once uncounted: the token's first use is written down, which later requests do not repeat.
        await admin.Client.GetJsonAsync("/api/team/members");
        var (small, two) = await ListAsync(admin, $"two-{Guid.NewGuid():N}");
        Assert.Equal(2, two.GetArrayLength());

        var others = new List<TestUser>();
        for (var i = 0; i < 10; i++) others.Add(await MemberAsync(team, password: i % 2 == 0));
        var (large, twelve) = await ListAsync(admin, $"twelve-{Guid.NewGuid():N}");
        Assert.Equal(12, twelve.GetArrayLength());
        Assert.True(small > 0, "nothing was counted");
        Assert.Equal(small, large);

        foreach (var member in new[] { admin, first }.Concat(others))
        {
            var view = twelve.EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == member.Id);
            var local = member.Email.Split('@')[0];
            var addresses = view.GetProperty("addresses").EnumerateArray()
                .Select(a => (a.GetProperty("address").GetString(), a.GetProperty("state").GetString())).ToList();
            Assert.Equal([(member.Email, "sign-in"), ($"{local}@alias.test", "unconfirmed"), ($"{local}@confirmed.test", "confirmed")], addresses);
            Assert.Equal(member == admin || others.IndexOf(member) % 2 == 0 ? "active" : "no-password", view.GetProperty("access").GetString());
        }
    }
}

public sealed class TeamMembersQueryCountOnSqlite(CountingSqliteApp app) : TeamMembersQueryCountTests(app), IClassFixture<CountingSqliteApp>;

public sealed class TeamMembersQueryCountOnPostgres(CountingPostgresApp app) : TeamMembersQueryCountTests(app), IClassFixture<CountingPostgresApp>;
