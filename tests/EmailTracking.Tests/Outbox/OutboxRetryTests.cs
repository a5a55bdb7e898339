using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Outbox;

/// <summary>
/// How long a delivery is tried with the production defaults, on a fake clock: failures for more than a day before a
/// dead letter, and limits (Salesforce's daily API limit, a receiver's 429) waited out for a day without using up
/// attempts.
/// </summary>
public abstract class OutboxRetryTests(OutboxApp app)
{
    const string Kind = "retry-test";

    /// <summary>Answers what the test says, counting the calls.</summary>
    sealed class ScriptedTarget : IDeliveryTarget
    {
        public int Calls;
        public DeliveryResult Answer { get; set; } = new(DeliveryOutcome.Delivered, 200);
        public string Kind => OutboxRetryTests.Kind;

        public Task<DeliveryResult> DeliverAsync(Guid targetId, OutboxMessage message, CancellationToken ct)
        {
            Interlocked.Increment(ref Calls);
            return Task.FromResult(Answer);
        }
    }

    [Fact]
    public void With_the_defaults_failures_are_retried_for_more_than_a_day_before_a_dead_letter()
    {
        // Salesforce's daily API limit is a rolling 24 hours, and a receiver may be down for an evening and a night.
        var o = new OutboxOptions();
        var shortest = TimeSpan.MaxValue;
        for (var i = 0; i < 200; i++)
        {
            var total = TimeSpan.Zero;
            for (var failures = 1; failures < o.MaxAttempts; failures++) total += OutboxWorker.Backoff(failures, null, o);
            if (total < shortest) shortest = total;
        }
        Assert.True(shortest >= TimeSpan.FromHours(24), $"a delivery can be dead after {shortest.TotalHours:F1} hours of failures");
    }

    [Fact]
    public async Task A_target_over_its_limit_is_waited_for_a_day_without_using_up_attempts_and_then_its_answers_count()
    {
        var user = await app.NewUserAsync();
        // The production defaults (the app's own are quick for its other tests); far ahead of the real clock, so that
        // the server's own worker never finds this delivery due.
        var options = Options.Create(new OutboxOptions());
        var o = options.Value;
        var start = new DateTimeOffset(2041, 3, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var payload = JsonSerializer.Serialize(new OutboxPayload("message.sent", start, user.TeamId, user.Id, user.Email, Guid.NewGuid(),
            "Proposal", start, "sam@encom.test", ["sam@encom.test"], null, null, null, null, "human", null, new OutboxSummary(0, 0, 0, false)),
            new JsonSerializerOptions(JsonSerializerDefaults.Web));
        long id = 0;
        await app.WithDbAsync(async db =>
        {
            var d = new OutboxDelivery
            {
                TeamId = user.TeamId, TargetKind = Kind, TargetId = Guid.NewGuid(), EventType = "message.sent",
                IdempotencyKey = $"retry-{Guid.NewGuid():N}", Payload = payload, State = DeliveryState.Pending, CreatedAt = start, NextAttemptAt = start,
            };
            db.OutboxDeliveries.Add(d);
            await db.SaveChangesAsync();
            id = d.Id;
        });
        OutboxDelivery Delivery() => app.WithDb(db => db.OutboxDeliveries.AsNoTracking().Single(d => d.Id == id));

        var target = new ScriptedTarget { Answer = new(DeliveryOutcome.Limited, 403, "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.") };
        var targets = new ServiceCollection().AddKeyedSingleton<IDeliveryTarget>(Kind, target).BuildServiceProvider();
        async Task PassAsync()
        {
            using var scope = app.Services.CreateScope();
            var worker = new OutboxWorker(scope.ServiceProvider.GetRequiredService<AppDbContext>(), targets, clock, options,
                scope.ServiceProvider.GetRequiredService<DatabaseInfo>(), NullLogger<OutboxWorker>.Instance);
            foreach (var lane in await worker.ClaimLanesAsync("retry-instance", [], CancellationToken.None))
                await worker.DeliverLaneAsync(lane, "retry-instance", CancellationToken.None);
        }

        // A whole day over the limit: the delivery waits, asked about less and less often, with every attempt left.
        var waits = new List<TimeSpan>();
        while (clock.GetUtcNow() - start < o.LimitPatience)
        {
            await PassAsync();
            var d = Delivery();
            Assert.Equal((DeliveryState.Pending, 0), (d.State, d.Attempts));
            waits.Add(d.NextAttemptAt - clock.GetUtcNow());
            clock.SetUtcNow(d.NextAttemptAt);
        }
        Assert.Equal(waits.Count, target.Calls);
        Assert.InRange(target.Calls, 8, 40);
        Assert.True(waits[0] <= o.FirstBackoff, $"the first wait was {waits[0]}");
        Assert.All(waits, w => Assert.InRange(w, o.FirstBackoff / 2, o.MaxBackoff));

        // After the day the limit counts as a failure: the delivery's attempts go, and then it is a dead letter.
        await PassAsync();
        Assert.Equal(1, Delivery().Attempts);
        for (var n = 1; n < o.MaxAttempts && Delivery().State == DeliveryState.Pending; n++)
        {
            clock.SetUtcNow(Delivery().NextAttemptAt);
            await PassAsync();
        }
        Assert.Equal((DeliveryState.Dead, o.MaxAttempts), (Delivery().State, Delivery().Attempts));
        Assert.Equal(app.WithDb(db => db.DeliveryAttempts.Count(a => a.DeliveryId == id)), target.Calls);
    }
}

public sealed class OutboxRetryOnSqlite(OutboxSqliteApp app) : OutboxRetryTests(app), IClassFixture<OutboxSqliteApp>;

public sealed class OutboxRetryOnPostgres(OutboxPostgresApp app) : OutboxRetryTests(app), IClassFixture<OutboxPostgresApp>;
