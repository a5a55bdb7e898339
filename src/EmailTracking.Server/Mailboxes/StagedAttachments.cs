using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// The files a Compose form came back with, kept on the server for <see cref="Kept"/> (a browser cannot be handed
/// chosen files back): in the database rather than in a directory, so that every instance behind a load balancer
/// finds them and a restart keeps them, and so that they are the user's own rows (an id of another user's file is
/// unknown, as an expired one is). Each form that keeps them again gives them another <see cref="Kept"/>. The form's
/// files count toward the same limits as the files chosen with them (<see cref="Attachments.Check"/>); together, a
/// user keeps at most <see cref="MaxFormsKept"/> forms' worth.
/// </summary>
public sealed class StagedAttachments(AppDbContext db, [FromKeyedServices(StagedAttachments.ClockKey)] TimeProvider clock,
    StagedAttachmentUpkeep upkeep)
{
    /// <summary>The clock kept files expire by (tests move it).</summary>
    public const string ClockKey = "staged-attachments";
    public static readonly TimeSpan Kept = TimeSpan.FromHours(1);
    /// <summary>How many full forms' attachments one user may have kept at once (several Compose tabs).</summary>
    public const int MaxFormsKept = 4;

    /// <summary>The user's kept files among these ids, in the order given, and how many ids are not (or no longer) theirs.</summary>
    public async Task<(List<StagedAttachment> Found, int Unknown)> FindAsync(Guid userId, IReadOnlyCollection<Guid> ids, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await PruneAsync(now, ct);
        var wanted = ids.Distinct().ToList();
        if (wanted.Count == 0) return ([], 0);
        var rows = await db.StagedAttachments.AsNoTracking()
            .Where(s => s.UserId == userId && wanted.Contains(s.Id) && s.ExpiresAt > now).ToListAsync(ct);
        var byId = rows.ToDictionary(r => r.Id);
        return ([.. wanted.Where(byId.ContainsKey).Select(id => byId[id])], wanted.Count(id => !byId.ContainsKey(id)));
    }

    /// <summary>
    /// Keeps the form's files for another <see cref="Kept"/>: those kept already (their time renewed) and the new ones
    /// (stored). The form's other rows (removed from it) go. The new files are not kept when the user's kept files
    /// would pass <see cref="MaxFormsKept"/> forms' worth: then null, and the form asks for them again.
    /// </summary>
    public async Task<List<StagedAttachment>?> KeepAsync(Guid userId, Guid formKey, IReadOnlyList<StagedAttachment> kept,
        IReadOnlyList<(string Name, byte[] Content)> added, long maxAttachmentBytes, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var keptIds = kept.Select(k => k.Id).ToList();
        await db.StagedAttachments.Where(s => s.UserId == userId && s.FormKey == formKey && !keptIds.Contains(s.Id)).ExecuteDeleteAsync(ct);
        await db.StagedAttachments.Where(s => s.UserId == userId && keptIds.Contains(s.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.ExpiresAt, now + Kept).SetProperty(x => x.FormKey, formKey), ct);
        if (added.Count == 0) return [.. kept];

        var elsewhere = await db.StagedAttachments.Where(s => s.UserId == userId && s.ExpiresAt > now && !keptIds.Contains(s.Id))
            .SumAsync(s => (long?)s.Size, ct) ?? 0;
        var total = elsewhere + kept.Sum(k => k.Size) + added.Sum(a => (long)a.Content.Length);
        if (total > maxAttachmentBytes * MaxFormsKept) return null;

        var rows = added.Select(a => new StagedAttachment
        {
            Id = Guid.NewGuid(), UserId = userId, FormKey = formKey, FileName = a.Name, Size = a.Content.LongLength, Content = a.Content,
            CreatedAt = now, ExpiresAt = now + Kept,
        }).ToList();
        db.StagedAttachments.AddRange(rows);
        await db.SaveChangesAsync(ct);
        foreach (var row in rows) db.Entry(row).State = EntityState.Detached;
        return [.. kept, .. rows];
    }

    /// <summary>The files the user removed from a form (without script, by ticking "remove").</summary>
    public Task RemoveAsync(Guid userId, IReadOnlyCollection<Guid> ids, CancellationToken ct) =>
        ids.Count == 0 ? Task.CompletedTask
            : db.StagedAttachments.Where(s => s.UserId == userId && ids.Contains(s.Id)).ExecuteDeleteAsync(ct);

    /// <summary>The form's message is sent: its kept files (those it took and those removed from it) go.</summary>
    public Task SentAsync(Guid userId, Guid formKey, IReadOnlyCollection<Guid> taken, CancellationToken ct) =>
        db.StagedAttachments.Where(s => s.UserId == userId && (s.FormKey == formKey || taken.Contains(s.Id))).ExecuteDeleteAsync(ct);

    async Task PruneAsync(DateTimeOffset now, CancellationToken ct)
    {
        if (upkeep.Due(now)) await db.StagedAttachments.Where(s => s.ExpiresAt <= now).ExecuteDeleteAsync(ct);
    }
}

/// <summary>
/// Deletes the expired kept files about once a minute per instance, by the first Compose post after it, as the
/// idempotency keys' upkeep does. A file expired but not yet deleted is already treated as gone.
/// </summary>
public sealed class StagedAttachmentUpkeep : Web.UpkeepGate;

/// <summary>
/// Deletes the expired content of not-sent copies (<see cref="EmailTracking.Data.UnsentContent"/>) about once a minute
/// per instance, by the first send after it. Content expired but not yet deleted is already treated as gone.
/// </summary>
public sealed class UnsentContentUpkeep : Web.UpkeepGate;
