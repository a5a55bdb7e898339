using System.Collections.Concurrent;
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
        Assert.All(app.WithDb(db => db.OutboxDeliveries.Where(d => ids.Contains(d.Id)).ToList()), d => Assert.Equal(DeliveryState.Delivered, d.State));
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
                IdempotencyKey = $"lease-{Guid.NewGuid():N}", Payload = payload, State = DeliveryState.Pending, CreatedAt = start, NextAttemptAt = start,
            };
            db.OutboxDeliveries.Add(d);
            await db.SaveChangesAsync();
            id = d.Id;
        });
        return id;
    }

    OutboxDelivery Delivery(long id) => app.WithDb(db => db.OutboxDeliveries.AsNoTracking().Single(d => d.Id == id));

    async Task<int> PassAsync(IDeliveryTarget target, TimeProvider clock, string owner)
    {
        var options = app.Services.GetRequiredService<IOptions<OutboxOptions>>();
        var targets = new ServiceCollection().AddKeyedSingleton(Kind, target).BuildServiceProvider();
        using var scope = app.Services.CreateScope();
        var worker = new OutboxWorker(scope.ServiceProvider.GetRequiredService<AppDbContext>(), targets, clock, options,
            scope.ServiceProvider.GetRequiredService<DatabaseInfo>(), NullLogger<OutboxWorker>.Instance);
        var lanes = await worker.ClaimLanesAsync(owner, [], CancellationToken.None);
        foreach (var lane in lanes) await worker.DeliverLaneAsync(lane, owner, CancellationToken.None);
        return lanes.Sum(l => l.Ids.Count);
    }

    /// <summary>
    /// One delivery slower than the lease (a Salesforce delivery of many calls, each with its own timeout): its lease is
    /// renewed while it runs, so another instance that looks after the first lease would have lapsed finds it still
    /// taken, and the delivery is made once.
    /// </summary>
    [Fact]
    public async Task A_delivery_slower_than_its_lease_keeps_it_and_another_instance_does_not_take_it()
    {
        var lease = app.Services.GetRequiredService<IOptions<OutboxOptions>>().Value.Lease;
        var start = new DateTimeOffset(2042, 1, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var id = await NewDeliveryAsync(start);
        var target = new SlowTarget();
        var joined = -1;
        target.During = async (_, call) =>
        {
            if (call > 1) return;
            // Three lease-lengths of work, a third of a lease at a time; the lease must be renewed meanwhile.
            for (var step = 0; step < 9; step++)
            {
                clock.Advance(lease / 3);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
                while (Delivery(id).LeaseUntil is not { } until || until < clock.GetUtcNow() + lease / 2)
                {
                    if (DateTime.UtcNow > deadline) break;
                    await Task.Delay(20);
                }
            }
            joined = await PassAsync(target, clock, "instance-b");
        };

        Assert.Equal(1, await PassAsync(target, clock, "instance-a"));
        Assert.Equal(0, joined);
        Assert.Equal(1, target.Calls[id]);
        Assert.Equal(DeliveryState.Delivered, Delivery(id).State);
    }

    /// <summary>
    /// A delivery whose lease was lost all the same (the instance stalled, another one claimed it): what the first
    /// instance's attempt answered is not recorded over the other's claim.
    /// </summary>
    [Fact]
    public async Task A_delivery_whose_lease_another_instance_took_meanwhile_is_not_recorded_by_the_first()
    {
        var lease = app.Services.GetRequiredService<IOptions<OutboxOptions>>().Value.Lease;
        var start = new DateTimeOffset(2042, 2, 1, 9, 0, 0, TimeSpan.Zero);
        var clock = new FakeTimeProvider(start);
        var id = await NewDeliveryAsync(start);
        var target = new SlowTarget
        {
            During = async (_, _) => await app.WithDbAsync(db => db.OutboxDeliveries.Where(d => d.Id == id)
                .ExecuteUpdateAsync(u => u.SetProperty(d => d.LeaseOwner, "instance-b").SetProperty(d => d.LeaseUntil, start + 2 * lease))),
        };

        Assert.Equal(1, await PassAsync(target, clock, "instance-a"));
        var d = Delivery(id);
        Assert.Equal((DeliveryState.Pending, 0, "instance-b"), (d.State, d.Attempts, d.LeaseOwner));
        Assert.Empty(app.WithDb(db => db.DeliveryAttempts.Where(a => a.DeliveryId == id).ToList()));
    }
}

public sealed class OutboxLeaseOnSqlite(OutboxSqliteApp app) : OutboxLeaseTests(app), IClassFixture<OutboxSqliteApp>;

public sealed class OutboxLeaseOnPostgres(OutboxPostgresApp app) : OutboxLeaseTests(app), IClassFixture<OutboxPostgresApp>;
