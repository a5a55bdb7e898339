using System.Collections.Concurrent;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Outbox;

/// <summary>
/// Two instances' workers on one database, on a fake clock: a pass through slow receivers outlasts the lease it took
/// for its batch, and the other instance, finding the lease lapsed, must still not attempt a delivery the first one is
/// about to make.
/// </summary>
public abstract class OutboxLeaseTests(OutboxApp app)
{
    const string Kind = "lease-test";

    /// <summary>Counts calls per delivery and runs a step during each, as a slow receiver would take its time.</summary>
    sealed class SlowTarget : IDeliveryTarget
    {
        public ConcurrentDictionary<long, int> Calls { get; } = new();
        public Func<long, int, Task> During { get; set; } = (_, _) => Task.CompletedTask;
        public string Kind => OutboxLeaseTests.Kind;

        public async Task<DeliveryResult> DeliverAsync(Guid targetId, OutboxMessage message, CancellationToken ct)
        {
            var call = Calls.AddOrUpdate(message.DeliveryId, 1, (_, n) => n + 1);
            await During(message.DeliveryId, call);
            return new DeliveryResult(DeliveryOutcome.Delivered, 200);
        }
    }

    [Fact]
    public async Task A_pass_that_outlasts_its_lease_is_not_joined_by_another_instance_on_the_same_delivery()
    {
        var user = await app.NewUserAsync();
        var options = app.Services.GetRequiredService<IOptions<OutboxOptions>>();
        // Far ahead of the real clock, so the server's own worker never finds these due.
        var start = new DateTimeOffset(2040, 1, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var payload = JsonSerializer.Serialize(new OutboxPayload("message.opened", start, user.TeamId, user.Id, user.Email, Guid.NewGuid(),
            "Proposal", start, "sam@encom.test", ["sam@encom.test"], null, null, null, null, "human", null, new OutboxSummary(1, 0, 0, false)),
            new JsonSerializerOptions(JsonSerializerDefaults.Web));
        // Both to one target: its deliveries go one after another in a pass (targets of their own would go side by side).
        var targetId = Guid.NewGuid();
        var ids = await Task.WhenAll(Enumerable.Range(0, 2).Select(async n =>
        {
            long id = 0;
            await app.WithDbAsync(async db =>
            {
                var d = new OutboxDelivery
                {
                    TeamId = user.TeamId, TargetKind = Kind, TargetId = targetId, EventType = "message.opened",
                    IdempotencyKey = $"lease-{Guid.NewGuid():N}", Payload = payload, State = DeliveryState.Pending, CreatedAt = start, NextAttemptAt = start,
                };
                db.OutboxDeliveries.Add(d);
                await db.SaveChangesAsync();
                id = d.Id;
            });
            return id;
        }));
        Array.Sort(ids);

        var target = new SlowTarget();
        var targets = new ServiceCollection().AddKeyedSingleton<IDeliveryTarget>(Kind, target).BuildServiceProvider();
        async Task<int> PassAsync(string owner)
        {
            using var scope = app.Services.CreateScope();
            var worker = new OutboxWorker(scope.ServiceProvider.GetRequiredService<AppDbContext>(), targets, clock, options,
                scope.ServiceProvider.GetRequiredService<DatabaseInfo>(), NullLogger<OutboxWorker>.Instance);
            // As the outbox loop does: claim, then each target's lane (one target here).
            var lanes = await worker.ClaimLanesAsync(owner, [], CancellationToken.None);
            foreach (var lane in lanes) await worker.DeliverLaneAsync(lane, owner, CancellationToken.None);
            return lanes.Sum(l => l.Ids.Count);
        }

        var joined = -1;
        target.During = async (id, call) =>
        {
            // The first receiver is slow: by the time it answers, the lease taken for the batch has run out.
            if (id == ids[0]) clock.Advance(options.Value.Lease + TimeSpan.FromSeconds(1));
            // While the second is being delivered, the other instance makes its pass.
            else if (call == 1)
            {
                clock.Advance(TimeSpan.FromSeconds(1));
                joined = await PassAsync("instance-b");
            }
        };

        Assert.Equal(2, await PassAsync("instance-a"));
        Assert.Equal(0, joined);
        Assert.Equal(1, target.Calls[ids[0]]);
        Assert.Equal(1, target.Calls[ids[1]]);
        Assert.All(app.WithDb(db => db.OutboxDeliveries.Where(d => d.TargetKind == Kind).ToList()), d => Assert.Equal(DeliveryState.Delivered, d.State));
    }
}

public sealed class OutboxLeaseOnSqlite(OutboxSqliteApp app) : OutboxLeaseTests(app), IClassFixture<OutboxSqliteApp>;

public sealed class OutboxLeaseOnPostgres(OutboxPostgresApp app) : OutboxLeaseTests(app), IClassFixture<OutboxPostgresApp>;
