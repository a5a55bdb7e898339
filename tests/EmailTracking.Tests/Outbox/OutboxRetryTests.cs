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

    /// <summary>A pending delivery to <see cref="Kind"/>, due at <paramref name="start"/>.</summary>
    async Task<long> NewDeliveryAsync(DateTimeOffset start)
    {
        var user = await app.NewUserAsync();
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
        return id;
    }

    OutboxDelivery Delivery(long id) => app.WithDb(db => db.OutboxDeliveries.AsNoTracking().Single(d => d.Id == id));

    List<DeliveryAttempt> Attempts(long id) => app.WithDb(db => db.DeliveryAttempts.AsNoTracking().Where(a => a.DeliveryId == id).OrderBy(a => a.Id).ToList());

    /// <summary>One pass of a worker with the production defaults on the fake clock, as the outbox loop makes it.</summary>
    async Task PassAsync(ScriptedTarget target, TimeProvider clock)
    {
        var targets = new ServiceCollection().AddKeyedSingleton<IDeliveryTarget>(Kind, target).BuildServiceProvider();
        using var scope = app.Services.CreateScope();
        var worker = new OutboxWorker(scope.ServiceProvider.GetRequiredService<AppDbContext>(), targets, clock, Options.Create(new OutboxOptions()),
            scope.ServiceProvider.GetRequiredService<DatabaseInfo>(), NullLogger<OutboxWorker>.Instance);
        foreach (var lane in await worker.ClaimLanesAsync("retry-instance", [], CancellationToken.None))
            await worker.DeliverLaneAsync(lane, "retry-instance", CancellationToken.None);
    }

    [Fact]
    public async Task A_target_over_its_limit_is_waited_for_a_day_without_using_up_attempts_and_then_its_answers_count()
    {
        // The production defaults (the app's own are quick for its other tests); far ahead of the real clock, so that
        // the server's own worker never finds the delivery due.
        var o = new OutboxOptions();
        var start = new DateTimeOffset(2041, 3, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var id = await NewDeliveryAsync(start);
        var target = new ScriptedTarget { Answer = new(DeliveryOutcome.Limited, 403, "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.") };

        // A whole day over the limit: the delivery waits, asked about less and less often, with every attempt left.
        var waits = new List<TimeSpan>();
        while (clock.GetUtcNow() - start < o.LimitPatience)
        {
            await PassAsync(target, clock);
            var d = Delivery(id);
            Assert.Equal((DeliveryState.Pending, 0), (d.State, d.Attempts));
            waits.Add(d.NextAttemptAt - clock.GetUtcNow());
            clock.SetUtcNow(d.NextAttemptAt);
        }
        Assert.Equal(waits.Count, target.Calls);
        Assert.InRange(target.Calls, 8, 40);
        Assert.True(waits[0] <= o.FirstBackoff, $"the first wait was {waits[0]}");
        Assert.All(waits, w => Assert.InRange(w, o.FirstBackoff / 2, o.MaxBackoff));

        // After the day the limit counts as a failure: the delivery's attempts go, and then it is a dead letter.
        await PassAsync(target, clock);
        Assert.Equal(1, Delivery(id).Attempts);
        for (var n = 1; n < o.MaxAttempts && Delivery(id).State == DeliveryState.Pending; n++)
        {
            clock.SetUtcNow(Delivery(id).NextAttemptAt);
            await PassAsync(target, clock);
        }
        Assert.Equal((DeliveryState.Dead, o.MaxAttempts), (Delivery(id).State, Delivery(id).Attempts));
        Assert.Equal(Attempts(id).Count, target.Calls);
    }

    /// <summary>
    /// Nobody reconnects the target for days (the admin who connected it has left): the delivery is looked at every
    /// 15 minutes, but its log keeps the first look, not 96 rows a day that the delivery log would load.
    /// </summary>
    [Fact]
    public async Task A_delivery_waiting_for_a_reconnect_logs_the_wait_once_not_at_every_look()
    {
        var o = new OutboxOptions();
        var start = new DateTimeOffset(2041, 6, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var id = await NewDeliveryAsync(start);
        var target = new ScriptedTarget { Answer = new(DeliveryOutcome.NeedsReconnect, Detail: "Salesforce refused the connection's credentials (inactive user).") };

        for (var look = 0; look < 10; look++)
        {
            await PassAsync(target, clock);
            var d = Delivery(id);
            Assert.Equal((DeliveryState.Pending, 0), (d.State, d.Attempts));
            Assert.Equal(clock.GetUtcNow() + o.ReconnectRetry, d.NextAttemptAt);
            clock.SetUtcNow(d.NextAttemptAt);
        }
        Assert.Equal(10, target.Calls);
        var logged = Assert.Single(Attempts(id));
        Assert.Equal((nameof(DeliveryOutcome.NeedsReconnect), start), (logged.Outcome, logged.At));

        // Another reason is logged (once); so is the delivery once the target is back.
        target.Answer = new(DeliveryOutcome.NeedsReconnect, Detail: "Salesforce refused the connection's credentials (expired access/refresh token).");
        await PassAsync(target, clock);
        clock.SetUtcNow(Delivery(id).NextAttemptAt);
        await PassAsync(target, clock);
        target.Answer = new(DeliveryOutcome.Delivered, 201);
        clock.SetUtcNow(Delivery(id).NextAttemptAt);
        await PassAsync(target, clock);
        Assert.Equal(DeliveryState.Delivered, Delivery(id).State);
        Assert.Equal([nameof(DeliveryOutcome.NeedsReconnect), nameof(DeliveryOutcome.NeedsReconnect), nameof(DeliveryOutcome.Delivered)],
            Attempts(id).Select(a => a.Outcome));
    }

    /// <summary>
    /// Nobody ever reconnects the target: after Outbox:ReconnectPatience (30 days by default) from when it was made, the
    /// delivery is a dead letter saying why, in the delivery log as other failures are, and can be replayed once the
    /// target is reconnected.
    /// </summary>
    [Fact]
    public async Task A_delivery_that_waited_too_long_for_a_reconnect_fails_saying_why()
    {
        var o = new OutboxOptions();
        var start = new DateTimeOffset(2041, 9, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var id = await NewDeliveryAsync(start);
        var target = new ScriptedTarget { Answer = new(DeliveryOutcome.NeedsReconnect, Detail: "Salesforce refused the connection's credentials (inactive user).") };

        await PassAsync(target, clock);
        clock.SetUtcNow(start + TimeSpan.FromDays(29));
        await PassAsync(target, clock);
        Assert.Equal((DeliveryState.Pending, 0), (Delivery(id).State, Delivery(id).Attempts));

        clock.SetUtcNow(start + TimeSpan.FromDays(30) + TimeSpan.FromMinutes(1));
        await PassAsync(target, clock);
        var d = Delivery(id);
        Assert.Equal(DeliveryState.Dead, d.State);
        Assert.Contains("30 days", d.LastError);
        Assert.Contains("Outbox:ReconnectPatience", d.LastError);
        Assert.Contains("inactive user", d.LastError);
        var last = Attempts(id)[^1];
        Assert.Equal((nameof(DeliveryOutcome.Dead), d.LastError), (last.Outcome, last.Detail));
        Assert.Equal(3, target.Calls);
    }
}

public sealed class OutboxRetryOnSqlite(OutboxSqliteApp app) : OutboxRetryTests(app), IClassFixture<OutboxSqliteApp>;

public sealed class OutboxRetryOnPostgres(OutboxPostgresApp app) : OutboxRetryTests(app), IClassFixture<OutboxPostgresApp>;
