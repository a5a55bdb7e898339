using System.Collections.Concurrent;
using System.Data.Common;
using System.Net.Http.Headers;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Tracking;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Feed;

/// <summary>
/// The server with a count, for tests only, of the database commands run for each request that carries
/// <see cref="CountHeader"/> (its value names the count).
/// </summary>
public abstract class CountingApp(DatabaseProvider provider) : AppFactory(provider)
{
    public const string CountHeader = "X-Test-Count-Commands";

    protected override void Configure(IWebHostBuilder builder) => builder.ConfigureServices(services =>
    {
        services.AddHttpContextAccessor();
        services.AddSingleton<CommandCounter>();
        services.ConfigureDbContext<AppDbContext>((sp, o) => o.AddInterceptors(sp.GetRequiredService<CommandCounter>()));
    });

    /// <summary>The commands run so far for requests whose <see cref="CountHeader"/> is <paramref name="name"/>.</summary>
    public int Commands(string name) => Services.GetRequiredService<CommandCounter>().Count(name);

    /// <summary>A client of this user whose requests are counted under <paramref name="name"/>.</summary>
    public HttpClient CountedClient(TestUser user, string name)
    {
        var client = CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", user.Token);
        client.DefaultRequestHeaders.Add(CountHeader, name);
        return client;
    }

    sealed class CommandCounter(IHttpContextAccessor http) : DbCommandInterceptor
    {
        readonly ConcurrentDictionary<string, int> counts = new();

        public int Count(string name) => counts.GetValueOrDefault(name);

        void Counted()
        {
            string? name = http.HttpContext?.Request.Headers[CountHeader];
            if (!string.IsNullOrEmpty(name)) counts.AddOrUpdate(name, 1, (_, n) => n + 1);
        }

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
        {
            Counted();
            return result;
        }

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Counted();
            return ValueTask.FromResult(result);
        }

        public override InterceptionResult<object> ScalarExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<object> result)
        {
            Counted();
            return result;
        }

        public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<object> result, CancellationToken cancellationToken = default)
        {
            Counted();
            return ValueTask.FromResult(result);
        }

        public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
        {
            Counted();
            return result;
        }

        public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result,
            CancellationToken cancellationToken = default)
        {
            Counted();
            return ValueTask.FromResult(result);
        }
    }
}

public sealed class CountingSqliteApp() : CountingApp(DatabaseProvider.Sqlite);

public sealed class CountingPostgresApp() : CountingApp(DatabaseProvider.Postgres);

/// <summary>
/// A page that catches up (reconnected with Last-Event-ID, or opened after a while) while many events it showed as a
/// person's were taken back: a scanner's burst across a campaign, an image proxy's repeats, the sender's own views.
/// </summary>
public abstract class FeedCatchUpTests(CountingApp app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Catching_up_on_many_verdict_changes_costs_a_few_queries_not_one_per_recipient_and_each_says_what_still_counts()
    {
        var user = await app.NewUserAsync();
        const int recipients = 30;
        var campaign = await user.RegisterSimpleAsync(to: Enumerable.Range(0, recipients).Select(i => $"r{i}@encom.test").ToArray());
        var shared = await user.RegisterSimpleAsync(to: ["a@encom.test", "b@encom.test"], perRecipient: false);
        var copies = campaign.GetProperty("copies").EnumerateArray().ToList();
        string Pixel(JsonElement copy) => TestApi.Path(copy.GetProperty("pixelUrl").GetString()!);
        string Link(JsonElement copy) => TestApi.Path(copy.GetProperty("links")[0].GetProperty("trackedUrl").GetString()!);

        // Every recipient opens; every other one also clicks (a click that stays a person's). The shared copy is opened twice.
        for (var i = 0; i < recipients; i++)
        {
            (await app.Anonymous().GetAsync(Pixel(copies[i]))).Dispose();
            if (i % 2 == 0) (await app.Anonymous(Chrome).GetAsync(Link(copies[i]))).Dispose();
        }
        var sharedPixel = Pixel(shared.GetProperty("copies")[0]);
        (await app.Anonymous().GetAsync(sharedPixel)).Dispose();
        (await app.Anonymous().GetAsync(sharedPixel)).Dispose();
        var (lastEvent, lastChange) = app.WithDb(db => (db.Events.Where(e => e.UserId == user.Id).Max(e => e.Id),
            db.VerdictChanges.Select(c => (long?)c.Id).Max() ?? 0));
        Assert.Equal(recipients + recipients / 2 + 2,
            app.WithDb(db => db.Events.Count(e => e.UserId == user.Id && e.Verdict == Verdict.Human)));

        // The page was shown all of it; then every campaign open, and the shared copy's second open, are taken back.
        var sharedId = shared.GetProperty("id").GetGuid();
        var campaignId = campaign.GetProperty("id").GetGuid();
        var changed = await app.Services.GetRequiredService<VerdictCorrections>().RemarkAsync(db => db.Events.Where(e =>
            e.UserId == user.Id && e.Kind == EventKind.Open
            && (e.TrackedMessageId == campaignId || e.Id == db.Events.Where(x => x.TrackedMessageId == sharedId).Max(x => x.Id))), Verdict.Bot, "a test's correction");
        Assert.Equal(recipients + 1, changed);

        // The page catches up from where it was.
        using var stream = await Sse.OpenAsync(app.CountedClient(user, "catch-up"), "/api/feed", $"{lastEvent}:{lastChange}");
        var verdicts = new List<SseEvent>();
        while (verdicts.Count < recipients + 1) verdicts.Add(await stream.NextEventAsync(Patience));
        var commands = app.Commands("catch-up");

        // Each change says what still counts for its recipient (for the shared copy, of the whole message).
        var events = app.WithDb(db => db.Events.Where(e => e.UserId == user.Id && e.Verdict == Verdict.Human).AsNoTracking().ToList());
        Assert.All(verdicts, v =>
        {
            Assert.Equal("verdict", v.Event);
            var message = v.Data.GetProperty("messageId").GetGuid();
            var recipient = v.Data.GetProperty("recipientId").ValueKind == JsonValueKind.Null ? (Guid?)null : v.Data.GetProperty("recipientId").GetGuid();
            var still = events.Where(e => e.TrackedMessageId == message && (recipient is null || e.RecipientId == recipient)).ToList();
            DateTimeOffset? Of(string name) => v.Data.GetProperty(name).ValueKind == JsonValueKind.Null ? null : v.Data.GetProperty(name).GetDateTimeOffset();
            Assert.Equal(still.Where(e => e.Kind == EventKind.Open).Select(e => (DateTimeOffset?)e.OccurredAt).Min(), Of("firstOpenAt"));
            Assert.Equal(still.Where(e => e.Kind == EventKind.Open).Select(e => (DateTimeOffset?)e.OccurredAt).Max(), Of("lastOpenAt"));
            Assert.Equal(still.Where(e => e.Kind == EventKind.Click).Select(e => (DateTimeOffset?)e.OccurredAt).Max(), Of("lastClickAt"));
        });
        Assert.Equal(recipients + 1, verdicts.Select(v => v.Data.GetProperty("change").GetInt64()).Distinct().Count());
        Assert.Equal(recipients / 2, verdicts.Count(v => v.Data.GetProperty("lastClickAt").ValueKind != JsonValueKind.Null));
        Assert.NotEqual(JsonValueKind.Null, Assert.Single(verdicts, v => v.Data.GetProperty("messageId").GetGuid() == sharedId).Data.GetProperty("lastOpenAt").ValueKind);

        // A few queries for the whole page of changes (the checks before the stream, the changes, what still counts,
        // the events), however many recipients they touch: one per recipient made a campaign's catch-up hundreds.
        Assert.True(commands <= 12, $"{commands} database commands to catch up on {recipients + 1} changes");

        // Nothing twice, nothing more, until something new happens.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream.NextEventAsync(TimeSpan.FromSeconds(1.5)));
    }
}

public sealed class FeedCatchUpOnSqlite(CountingSqliteApp app) : FeedCatchUpTests(app), IClassFixture<CountingSqliteApp>;

public sealed class FeedCatchUpOnPostgres(CountingPostgresApp app) : FeedCatchUpTests(app), IClassFixture<CountingPostgresApp>;
