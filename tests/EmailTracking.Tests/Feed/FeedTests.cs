using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Feed;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace EmailTracking.Tests.Feed;

public abstract class FeedTests(AppFactory app)
{
    /// <summary>Reads server-sent events from a stream: (id, data) pairs.</summary>
    [Fact]
    public async Task New_activity_streams_live_and_a_reconnect_with_last_event_id_loses_nothing_and_repeats_nothing()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(to: ["a@encom.test", "b@encom.test", "c@encom.test"]);
        var pixels = reg.GetProperty("copies").EnumerateArray().Select(c => TestApi.Path(c.GetProperty("pixelUrl").GetString()!)).ToList();

        using (var live = await Sse.OpenAsync(user.Client, "/api/feed"))
        {
            await app.Anonymous().GetAsync(pixels[0]);
            var first = await live.NextAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("open", first.Data.GetProperty("kind").GetString());
            Assert.Equal("human", first.Data.GetProperty("verdict").GetString());
            Assert.Equal("a@encom.test", first.Data.GetProperty("recipient").GetString());
            Assert.Equal("Proposal", first.Data.GetProperty("subject").GetString());
            Assert.Equal(first.Id, first.Data.GetProperty("id").GetInt64());

            // The connection drops; two more events happen while nobody listens.
            await app.Anonymous().GetAsync(pixels[1]);
            await app.Anonymous().GetAsync(pixels[2]);

            using var resumed = await Sse.OpenAsync(user.Client, "/api/feed", lastEventId: first.Id);
            var second = await resumed.NextAsync(TimeSpan.FromSeconds(10));
            var third = await resumed.NextAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(["b@encom.test", "c@encom.test"], new[] { second, third }.Select(e => e.Data.GetProperty("recipient").GetString()));
            Assert.True(first.Id < second.Id && second.Id < third.Id);

            // Nothing more (no duplicates) until something new happens.
            await app.Anonymous().GetAsync(pixels[0]);
            var fourth = await resumed.NextAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("a@encom.test", fourth.Data.GetProperty("recipient").GetString());
            Assert.True(fourth.Id > third.Id);
        }
    }

    [Fact]
    public async Task The_feed_shows_only_the_users_own_messages_and_admins_may_follow_the_team()
    {
        var admin = await app.NewUserAsync();
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var stranger = await app.NewUserAsync();
        var reg = await member.RegisterSimpleAsync();

        Assert.Equal(HttpStatusCode.Forbidden, (await member.Client.GetAsync("/api/feed?scope=team")).StatusCode);
        using var team = await Sse.OpenAsync(admin.Client, "/api/feed?scope=team&after=0");
        using var own = await Sse.OpenAsync(member.Client, "/api/feed?after=0");
        using var strangers = await Sse.OpenAsync(stranger.Client, "/api/feed?after=0");
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));

        Assert.Equal(reg.GetProperty("id").GetString(), (await team.NextAsync(TimeSpan.FromSeconds(10))).Data.GetProperty("messageId").GetString());
        Assert.Equal(reg.GetProperty("id").GetString(), (await own.NextAsync(TimeSpan.FromSeconds(10))).Data.GetProperty("messageId").GetString());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => strangers.NextAsync(TimeSpan.FromSeconds(2)));
    }
}

public abstract class FeedWakeTests(AppFactory app)
{
    [Fact]
    public async Task A_commit_wakes_only_the_streams_that_can_show_its_events()
    {
        var admin = await app.NewUserAsync();
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var colleague = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var stranger = await app.NewUserAsync();
        var reg = await member.RegisterSimpleAsync();
        using var own = await Sse.OpenAsync(member.Client, "/api/feed?after=0");

        var notifier = app.Services.GetRequiredService<FeedNotifier>();
        // On PostgreSQL the listener wakes every stream once it has connected: let that be over first.
        await AfterTheCommitsNotificationsAsync(notifier);
        var teamWakes = notifier.NextForTeam(admin.TeamId);
        var colleagueWakes = notifier.NextForUser(colleague.Id);
        var strangerWakes = notifier.NextForUser(stranger.Id);
        var strangersTeamWakes = notifier.NextForTeam(stranger.TeamId);
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));

        Assert.Equal(reg.GetProperty("id").GetString(), (await own.NextAsync(TimeSpan.FromSeconds(10))).Data.GetProperty("messageId").GetString());
        await teamWakes.WaitAsync(TimeSpan.FromSeconds(10));
        await AfterTheCommitsNotificationsAsync(notifier);
        // A colleague in the same team and another team's user: their streams had nothing new to read.
        Assert.False(colleagueWakes.IsCompleted);
        Assert.False(strangerWakes.IsCompleted);
        Assert.False(strangersTeamWakes.IsCompleted);
    }

    /// <summary>
    /// On PostgreSQL the commit's NOTIFY comes back through the LISTEN connection after the stream saw the event; a
    /// NOTIFY sent after it arrives after it (notifications arrive in commit order), so once that one has woken its
    /// stream, the commit's has been handled too.
    /// </summary>
    async Task AfterTheCommitsNotificationsAsync(FeedNotifier notifier)
    {
        if (app.Provider != "Postgres") return;
        var (team, user) = (Guid.NewGuid(), Guid.NewGuid());
        var marker = notifier.NextForUser(user);
        await using var conn = new NpgsqlConnection(app.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_notify(@c, @p)", conn);
        cmd.Parameters.AddWithValue("c", FeedNotifier.Channel);
        cmd.Parameters.AddWithValue("p", FeedNotifier.Payloads([(team, user)])[0]);
        await cmd.ExecuteNonQueryAsync();
        await marker.WaitAsync(TimeSpan.FromSeconds(10));
    }
}

public sealed class FeedWakeOnSqlite(SqliteApp app) : FeedWakeTests(app), IClassFixture<SqliteApp>;

public sealed class FeedWakeOnPostgres(PostgresApp app) : FeedWakeTests(app), IClassFixture<PostgresApp>;

public sealed class FeedOnSqlite(SqliteApp app) : FeedTests(app), IClassFixture<SqliteApp>;

public sealed class FeedOnPostgres(PostgresApp app) : FeedTests(app), IClassFixture<PostgresApp>;
