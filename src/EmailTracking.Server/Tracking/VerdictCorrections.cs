using EmailTracking.Data;
using EmailTracking.Server.Feed;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Tracking;

/// <summary>
/// Takes back a person's open or click once it is known to be a machine's (or the sender's own): the event's verdict
/// changes, a <see cref="VerdictChange"/> says so in commit order, and the live feeds that can show the event wake to
/// send it on. Every later correction of a verdict goes through here, so that no screen keeps counting what the
/// database no longer counts.
/// </summary>
public sealed class VerdictCorrections(IServiceScopeFactory scopes, FeedNotifier feed, TimeProvider clock)
{
    /// <summary>
    /// Marks the events <paramref name="which"/> selects that are still a person's as <paramref name="to"/>; returns
    /// how many changed. Runs on a context of its own, whatever the caller's holds.
    /// </summary>
    public async Task<int> RemarkAsync(Func<AppDbContext, IQueryable<TrackingEvent>> which, Verdict to, string reason, CancellationToken ct = default)
    {
        if (to == Verdict.Human) throw new ArgumentOutOfRangeException(nameof(to), "Corrections take a person's event back; they never make one.");
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.GetUtcNow();
        var strategy = db.Database.CreateExecutionStrategy();
        var changed = await strategy.ExecuteAsync(async () =>
        {
            // A retried attempt starts from nothing added by the failed one.
            db.ChangeTracker.Clear();
            // SQLite begins this as a write transaction (BEGIN IMMEDIATE), PostgreSQL takes the events' order lock: either
            // way two corrections of one event cannot both find it still a person's and record the change twice. Change
            // ids, like event ids, then commit in id order: a feed reading after change N would otherwise skip a smaller
            // one committed later.
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await EventRecorder.LockEventOrderAsync(db.Database, ct);
            // Corrections are about a message's hits (its copies' bursts, its proxy's repeats, its sender's view): a
            // document read through a share link outside any message keeps the verdict it was recorded with.
            var rows = await which(db).Where(e => e.Verdict == Verdict.Human && e.TrackedMessageId != null)
                .Select(e => new { e.Id, e.TeamId, e.UserId, TrackedMessageId = e.TrackedMessageId!.Value, e.RecipientId, e.Kind })
                .AsNoTracking().ToListAsync(ct);
            if (rows.Count == 0) return rows;
            var ids = rows.ConvertAll(r => r.Id);
            var text = reason.Length > 300 ? reason[..300] : reason;
            await db.Events.Where(e => ids.Contains(e.Id))
                .ExecuteUpdateAsync(s => s.SetProperty(e => e.Verdict, to).SetProperty(e => e.Reason, text), ct);
            var changes = rows.ConvertAll(r => new VerdictChange
            {
                EventId = r.Id,
                TeamId = r.TeamId,
                UserId = r.UserId,
                TrackedMessageId = r.TrackedMessageId,
                RecipientId = r.RecipientId,
                Kind = r.Kind,
                From = Verdict.Human,
                To = to,
                Reason = text,
                ChangedAt = now,
            });
            db.VerdictChanges.AddRange(changes);
            await db.SaveChangesAsync(ct);
            await FeedNotifier.NotifyOnCommitAsync(db.Database, rows.Select(r => (r.TeamId, r.UserId)), ct);
            await tx.CommitAsync(ct);
            db.ChangeTracker.Clear();
            return rows;
        });
        if (changed.Count > 0) feed.Notify(changed.Select(r => (r.TeamId, r.UserId)));
        return changed.Count;
    }
}
