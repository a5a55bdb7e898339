using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EmailTracking.Tests.Outbox;

/// <summary>The outbox loop looks only once an hour here, so that only a pass that goes again by itself moves on.</summary>
public abstract class OutboxBacklogApp(DatabaseProvider provider) : OutboxApp(provider)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("Outbox:PollInterval", "01:00:00");
    }
}

public sealed class OutboxBacklogSqliteApp() : OutboxBacklogApp(DatabaseProvider.Sqlite);

public sealed class OutboxBacklogPostgresApp() : OutboxBacklogApp(DatabaseProvider.Postgres);

/// <summary>
/// Every team's events go through the dispatcher's one cursor. A backlog bigger than a pass reads (10 × Outbox:Batch
/// events) is dispatched pass after pass at once, not a pass per poll interval: at 1,000 events every 5 s, any burst
/// above 200 events a second (the opens after a large send) would leave every team's replies and sends ever later.
/// </summary>
public abstract class OutboxBacklogTests(OutboxBacklogApp app)
{
    long Cursor() => app.WithDb(db => db.OutboxCursors.AsNoTracking().Where(c => c.Name == OutboxDispatcher.EventsCursor).Select(c => (long?)c.Value).FirstOrDefault()) ?? -1;

    static async Task Until(Func<bool> done, TimeSpan patience, string what)
    {
        var deadline = DateTime.UtcNow + patience;
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, what + " did not happen in time");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_backlog_of_several_passes_is_dispatched_without_waiting_the_poll_interval_between_them()
    {
        // The loop's first pass, at the start, sets the cursor where the events end (history is not replayed).
        await Until(() => Cursor() >= 0, TimeSpan.FromSeconds(30), "the events cursor");
        var batch = app.Services.GetRequiredService<IOptions<OutboxOptions>>().Value.Batch * 10;
        var user = await app.NewUserAsync(); // no webhook, no Salesforce: these events go nowhere, as most do
        var at = DateTimeOffset.UtcNow.AddHours(-1);
        await app.WithDbAsync(async db =>
        {
            // Share-link reads outside any message: the cheapest kind to pass over, so that the passes take little time.
            for (var i = 0; i < 6 * batch; i++)
            {
                db.Events.Add(new TrackingEvent
                {
                    TeamId = user.TeamId, UserId = user.Id, Kind = EventKind.DocumentView, OccurredAt = at, Verdict = Verdict.Human, Reason = "backlog",
                });
            }
            await db.SaveChangesAsync();
        });
        var last = app.WithDb(db => db.Events.Max(e => e.Id));
        var first = Cursor();
        Assert.True(last - first >= 6 * batch);

        // One poke (again only if the loop was not yet waiting for one): the loop goes through the whole backlog by itself.
        var signal = app.Services.GetRequiredService<OutboxSignal>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Cursor() == first)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first pass did not happen in time");
            signal.Poke();
            await Task.Delay(400);
        }
        await Until(() => Cursor() == last, TimeSpan.FromSeconds(60), "the cursor reaching the last event");
    }
}

public sealed class OutboxBacklogOnSqlite(OutboxBacklogSqliteApp app) : OutboxBacklogTests(app), IClassFixture<OutboxBacklogSqliteApp>;

public sealed class OutboxBacklogOnPostgres(OutboxBacklogPostgresApp app) : OutboxBacklogTests(app), IClassFixture<OutboxBacklogPostgresApp>;
