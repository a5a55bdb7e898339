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

    [Fact]
    public async Task A_last_event_id_that_is_no_cursor_is_a_400_problem_not_a_stream_that_silently_starts_from_now()
    {
        // Started from now, the stream would lose, without a word, everything since the position the client meant.
        var user = await app.NewUserAsync();
        foreach (var bad in new[] { "x", "12:", "-1", "99999999999999999999", "1:2:3" })
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, "/api/feed?after=0");
            req.Headers.TryAddWithoutValidation("Last-Event-ID", bad);
            using var res = await user.Client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Last-Event-ID", await res.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task A_scope_the_feed_does_not_have_or_a_negative_position_is_a_400_problem_not_another_stream()
    {
        // scope=teams streamed the admin's own messages only, and after=-1 started from now: the team's activity, or
        // what happened since, looked missing without a word.
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        foreach (var (query, says) in new[] { ("scope=teams", "scope"), ("scope=all", "scope"), ("after=-1", "after"), ("after=0&changes=-5", "changes") })
        {
            using var res = await admin.Client.GetAsync("/api/feed?" + query, HttpCompletionOption.ResponseHeadersRead);
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{query}: {(int)res.StatusCode}");
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
            Assert.Contains(says, await res.Content.ReadAsStringAsync());
        }
        // The scopes it has still stream, in any case.
        foreach (var query in new[] { "scope=team", "scope=Team", "scope=mine", "scope=" })
        {
            using var res = await admin.Client.GetAsync("/api/feed?" + query, HttpCompletionOption.ResponseHeadersRead);
            Assert.True(res.StatusCode == HttpStatusCode.OK, $"{query}: {(int)res.StatusCode}");
            Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task A_cursor_past_the_end_of_the_feed_is_a_400_problem_not_a_stream_that_skips_what_comes_next()
    {
        // A tab left open while the database was restored from a backup (or that reconnects to another deployment):
        // its browser resumes from a position this database never reached. Streamed from there, the events that take
        // the ids up to it would never be shown, and the page would go quiet without a word.
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));
        var (events, changes) = app.WithDb(db => (db.Events.Max(e => e.Id), db.VerdictChanges.Select(c => (long?)c.Id).Max() ?? 0));
        foreach (var (header, query) in new[]
                 {
                     ($"{events + 1000}:{changes}", "after=0"), ($"{events}:{changes + 1000}", "after=0"), ($"{events + 1000}", "after=0"),
                     ("", $"after={events + 1000}&changes={changes}"), ("", $"after={events}&changes={changes + 1000}"),
                 })
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, "/api/feed?" + query);
            if (header.Length > 0) req.Headers.TryAddWithoutValidation("Last-Event-ID", header);
            using var res = await user.Client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        }

        // The feed's own last position still resumes.
        using var resumed = await Sse.OpenAsync(user.Client, "/api/feed", lastEventId: $"{events}:{changes}");
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));
        Assert.True((await resumed.NextAsync(TimeSpan.FromSeconds(10))).Id > events);
    }
}

/// <summary>
/// A person's open or click that the feed showed and that later turned out to be a machine's: the feed takes it back
/// (a <c>verdict</c> event), exactly once per stream, resumed or not.
/// </summary>
public abstract class FeedVerdictTests(AppFactory app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    static async Task<List<SseEvent>> TakeAsync(SseReader stream, int count)
    {
        var events = new List<SseEvent>();
        while (events.Count < count) events.Add(await stream.NextEventAsync(Patience));
        return events;
    }

    static async Task AssertQuietAsync(SseReader stream) =>
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.NextEventAsync(TimeSpan.FromSeconds(1.5)));

    [Fact]
    public async Task A_click_taken_back_as_a_scanners_is_sent_once_and_a_resumed_stream_gets_exactly_what_it_missed()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: "<a href=\"https://example.com/1\">1</a><a href=\"https://example.com/2\">2</a>");
        string Link(int i) => TestApi.Path(reg.GetProperty("copies")[0].GetProperty("links")[i].GetProperty("trackedUrl").GetString()!);
        var browser = app.Anonymous(Chrome);

        using var live = await Sse.OpenAsync(user.Client, "/api/feed");
        await browser.GetAsync(Link(0));
        var first = await live.NextEventAsync(Patience);
        Assert.Equal(("activity", "click", "human"), (first.Event, first.Data.GetProperty("kind").GetString(), first.Data.GetProperty("verdict").GetString()));
        var firstId = first.Data.GetProperty("id").GetInt64();
        Assert.Matches("^[0-9]+:[0-9]+$", first.Cursor);

        // The second link within the burst window (10 s on this server, so that the live round trip between the two
        // clicks fits on a busy machine): both clicks were a scanner's, and the first is taken back.
        await browser.GetAsync(Link(1));
        var next = await TakeAsync(live, 2);
        var verdict = Assert.Single(next, e => e.Event == "verdict");
        var second = Assert.Single(next, e => e.Event == "activity");
        Assert.Equal(firstId, verdict.Data.GetProperty("id").GetInt64());
        Assert.Equal(("click", "human", "scanner"), (verdict.Data.GetProperty("kind").GetString(), verdict.Data.GetProperty("from").GetString(),
            verdict.Data.GetProperty("verdict").GetString()));
        Assert.Contains("within 10 seconds", verdict.Data.GetProperty("reason").GetString());
        Assert.Equal(reg.GetProperty("id").GetString(), verdict.Data.GetProperty("messageId").GetString());
        Assert.Equal(app.WithDb(db => db.Events.Single(e => e.Id == firstId).RecipientId), verdict.Data.GetProperty("recipientId").GetGuid());
        // Nothing of this recipient counts any more.
        Assert.Equal(JsonValueKind.Null, verdict.Data.GetProperty("lastClickAt").ValueKind);
        Assert.Equal("scanner", second.Data.GetProperty("verdict").GetString());
        var change = app.WithDb(db => Assert.Single(db.VerdictChanges.Where(c => c.TrackedMessageId == reg.GetProperty("id").GetGuid()).ToList()));
        Assert.Equal(change.Id, verdict.Data.GetProperty("change").GetInt64());
        await AssertQuietAsync(live);

        // Resumed from the first click's cursor: the change and the second click, nothing twice.
        using (var resumed = await Sse.OpenAsync(user.Client, "/api/feed", first.Cursor))
        {
            var missed = await TakeAsync(resumed, 2);
            Assert.Equal(["verdict", "activity"], missed.Select(e => e.Event));
            Assert.Equal(firstId, missed[0].Data.GetProperty("id").GetInt64());
            Assert.Equal(second.Data.GetProperty("id").GetInt64(), missed[1].Data.GetProperty("id").GetInt64());
            Assert.Equal($"{second.Data.GetProperty("id").GetInt64()}:{change.Id}", missed[1].Cursor);
            await AssertQuietAsync(resumed);
        }

        // A page that showed nothing yet (after=0, changes before this one): the first click comes as a scanner's and
        // its change is not sent, since the click itself was never shown as a person's.
        using (var fromPage = await Sse.OpenAsync(user.Client, $"/api/feed?after=0&changes={change.Id - 1}"))
        {
            var events = await TakeAsync(fromPage, 2);
            Assert.Equal(["activity", "activity"], events.Select(e => e.Event));
            Assert.Equal([firstId, second.Data.GetProperty("id").GetInt64()], events.Select(e => e.Data.GetProperty("id").GetInt64()));
            Assert.Equal(["scanner", "scanner"], events.Select(e => e.Data.GetProperty("verdict").GetString()));
            Assert.Equal($"{second.Data.GetProperty("id").GetInt64()}:{change.Id}", events[1].Cursor);
            await AssertQuietAsync(fromPage);
        }

        // Resumed from the last cursor: nothing until something new happens.
        using var caughtUp = await Sse.OpenAsync(user.Client, "/api/feed", next[^1].Cursor);
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));
        var open = await caughtUp.NextEventAsync(Patience);
        Assert.Equal(("activity", "open"), (open.Event, open.Data.GetProperty("kind").GetString()));
    }

    [Fact]
    public async Task Events_whose_changes_fill_more_than_a_page_go_out_with_their_new_verdict_and_no_change_is_sent_for_them()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var pixel = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        const int count = 201;
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (_, ct) => (await app.Anonymous().GetAsync(pixel, ct)).Dispose());
        // Taken back newest first: the change of the oldest event is the 201st, past the first page of changes.
        var changed = await app.Services.GetRequiredService<EmailTracking.Server.Tracking.VerdictCorrections>()
            .RemarkAsync(db => db.Events.Where(e => e.UserId == user.Id).OrderByDescending(e => e.Id), Verdict.Bot, "a test's correction");
        Assert.Equal(count, changed);

        // A page drawn before any of it: every event comes once, as a machine's, and no change for any of them.
        using var stream = await Sse.OpenAsync(user.Client, "/api/feed?after=0&changes=0");
        var events = await TakeAsync(stream, count);
        Assert.All(events, e => Assert.Equal(("activity", "bot"), (e.Event, e.Data.GetProperty("verdict").GetString())));
        Assert.Equal(count, events.Select(e => e.Data.GetProperty("id").GetInt64()).Distinct().Count());
        await AssertQuietAsync(stream);
    }

    [Fact]
    public async Task A_change_reaches_only_the_streams_that_can_show_its_event()
    {
        var admin = await app.NewUserAsync();
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var colleague = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var reg = await member.RegisterSimpleAsync(html: "<a href=\"https://example.com/1\">1</a><a href=\"https://example.com/2\">2</a>");
        string Link(int i) => TestApi.Path(reg.GetProperty("copies")[0].GetProperty("links")[i].GetProperty("trackedUrl").GetString()!);

        using var team = await Sse.OpenAsync(admin.Client, "/api/feed?scope=team");
        using var own = await Sse.OpenAsync(colleague.Client, "/api/feed");
        await app.Anonymous(Chrome).GetAsync(Link(0));
        // The first click is shown as a person's before the second gives it away (else it would come as a scanner's).
        Assert.Equal("human", (await team.NextEventAsync(Patience)).Data.GetProperty("verdict").GetString());
        await app.Anonymous(Chrome).GetAsync(Link(1));
        var seen = await TakeAsync(team, 2);
        Assert.Single(seen, e => e.Event == "verdict");
        await AssertQuietAsync(own);
    }

    [Theory]
    [InlineData("12", true, 12L, null)]
    [InlineData("12:5", true, 12L, 5L)]
    [InlineData("0:0", true, 0L, 0L)]
    [InlineData("", false, 0L, null)]
    [InlineData("x", false, 0L, null)]
    [InlineData("12:", false, 12L, null)]
    [InlineData(":5", false, 0L, null)]
    [InlineData("-1", false, 0L, null)]
    [InlineData("12:-5", false, 12L, null)]
    [InlineData("1:2:3", false, 1L, null)]
    [InlineData("99999999999999999999", false, 0L, null)]
    public void A_cursor_is_an_event_id_with_an_optional_change_id(string text, bool ok, long events, long? changes)
    {
        Assert.Equal(ok, FeedApi.TryParseCursor(text, out var e, out var c));
        if (ok) Assert.Equal((events, changes), (e, c));
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

public sealed class FeedVerdictOnSqlite(Tracking.WideClickBurstSqliteApp app) : FeedVerdictTests(app), IClassFixture<Tracking.WideClickBurstSqliteApp>;

public sealed class FeedVerdictOnPostgres(Tracking.WideClickBurstPostgresApp app) : FeedVerdictTests(app), IClassFixture<Tracking.WideClickBurstPostgresApp>;

public sealed class FeedOnSqlite(SqliteApp app) : FeedTests(app), IClassFixture<SqliteApp>;

public sealed class FeedOnPostgres(PostgresApp app) : FeedTests(app), IClassFixture<PostgresApp>;
