using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;

namespace EmailTracking.Server.Tracking;

/// <summary>What a pixel or click token points at: everything the hot path needs, in one row.</summary>
public sealed record TrackingTarget(
    Guid CopyId, Guid MessageId, Guid TeamId, Guid UserId, Guid? RecipientId, DateTimeOffset SentOrRegisteredAt,
    Guid? LinkId = null, string? Url = null, bool IsHoneypot = false);

/// <summary>
/// Token lookups, cached: a token's target never changes after registration except the send time, which the cache
/// forgets after a few minutes (and at once on this instance when a message is marked sent). Unknown tokens are cached
/// too, briefly, so a flood of made-up tokens does not reach the database.
/// </summary>
public sealed class TrackingTargets(IMemoryCache cache, IServiceScopeFactory scopes, Data.DatabaseInfo database, IConfiguration configuration,
    ILogger<TrackingTargets> log)
{
    /// <summary>The PostgreSQL channel on which instances tell each other a message's send time changed.</summary>
    public const string Channel = "et_targets";

    static readonly TimeSpan KnownTtl = TimeSpan.FromMinutes(5);
    static readonly TimeSpan UnknownTtl = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The target of a pixel token (null: none). A ValueTask, and the query built in a method of its own that only a
    /// miss calls (a lambda's captures are allocated on entry to the method that holds it): on the hot path the answer
    /// comes from the cache, and then nothing but the key is allocated for it.
    /// </summary>
    public ValueTask<TrackingTarget?> FindPixelAsync(string token, CancellationToken ct)
    {
        var key = "p:" + token;
        return cache.TryGetValue(key, out TrackingTarget? hit) ? new(hit) : new(LoadPixelAsync(key, token, ct));
    }

    /// <summary>The target of a click token (null: none); see <see cref="FindPixelAsync"/>.</summary>
    public ValueTask<TrackingTarget?> FindLinkAsync(string token, CancellationToken ct)
    {
        var key = "c:" + token;
        return cache.TryGetValue(key, out TrackingTarget? hit) ? new(hit) : new(LoadLinkAsync(key, token, ct));
    }

    Task<TrackingTarget?> LoadPixelAsync(string key, string token, CancellationToken ct) =>
        LoadAsync(key, db => db.Copies
            .Where(c => c.PixelToken == token)
            .Select(c => new TrackingTarget(c.Id, c.TrackedMessageId, c.TrackedMessage!.TeamId, c.TrackedMessage.UserId,
                c.RecipientId, c.TrackedMessage.SentAt ?? c.TrackedMessage.CreatedAt, null, null, false))
            .FirstOrDefaultAsync(ct));

    Task<TrackingTarget?> LoadLinkAsync(string key, string token, CancellationToken ct) =>
        LoadAsync(key, db => db.Links
            .Where(l => l.Token == token)
            .Select(l => new TrackingTarget(l.CopyId, l.Copy!.TrackedMessageId, l.Copy.TrackedMessage!.TeamId,
                l.Copy.TrackedMessage.UserId, l.Copy.RecipientId,
                l.Copy.TrackedMessage.SentAt ?? l.Copy.TrackedMessage.CreatedAt, l.Id, l.Url, l.IsHoneypot))
            .FirstOrDefaultAsync(ct));

    /// <summary>
    /// A message's send time changed (call after the change is committed): forgets its tokens' cached targets here
    /// and, on PostgreSQL, on every other instance (NOTIFY; <see cref="Feed.PostgresFeedListener"/> listens), so the
    /// timing rules measure from the new time everywhere at once — scanners click in the first seconds after sending,
    /// exactly while another instance's cache would still hold the old time.
    /// </summary>
    public async Task MessageChangedAsync(Guid messageId, CancellationToken ct)
    {
        await ForgetMessageLocalAsync(messageId, ct);
        if (database.Provider != DatabaseProvider.Postgres) return;
        try
        {
            await Data.ServerInstance.NotifyAsync(configuration, Channel, messageId.ToString("N"), ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Other instances then use the old time until their cache entry expires (KnownTtl).
            log.LogWarning(ex, "Could not tell other instances that message {Message} changed", messageId);
        }
    }

    /// <summary>Forgets the cached targets of all of a message's tokens on this instance.</summary>
    public async Task ForgetMessageLocalAsync(Guid messageId, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        Forget(await db.Copies.Where(c => c.TrackedMessageId == messageId).Select(c => c.PixelToken)
            .Concat(db.Links.Where(l => l.Copy!.TrackedMessageId == messageId).Select(l => l.Token)).ToListAsync(ct));
    }

    /// <summary>Forgets cached targets of these tokens on this instance.</summary>
    public void Forget(IEnumerable<string> tokens)
    {
        foreach (var t in tokens)
        {
            cache.Remove("p:" + t);
            cache.Remove("c:" + t);
        }
    }

    async Task<TrackingTarget?> LoadAsync(string key, Func<AppDbContext, Task<TrackingTarget?>> query)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var target = await query(db);
        cache.Set(key, target, new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = target is null ? UnknownTtl : KnownTtl, Size = 1 });
        return target;
    }
}
