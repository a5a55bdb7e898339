using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Outbox;

/// <summary>
/// What the REST API and the web app's webhook pages share: the validation of a webhook (errors by the API's field
/// names: url, eventTypes, description), making one, changing it, a new secret, deleting it, and reading the delivery
/// log. Team admins only; the callers check that and say so in their own way (a 403 problem, a page).
/// </summary>
public static class WebhookRules
{
    public static Dictionary<string, string[]> Validate(OutboxApi.WebhookRequest r, WebhookGuard guard)
    {
        var errors = new Dictionary<string, string[]>();
        if (guard.Check(r.Url) is { } bad) errors["url"] = [bad];
        if (r.EventTypes is not { Count: > 0 } types) errors["eventTypes"] = [$"Choose at least one of: {string.Join(", ", OutboxEventTypes.All)}."];
        else if (types.Any(t => t is null || !OutboxEventTypes.All.Contains(t)))
            errors["eventTypes"] = [$"'{types.First(t => t is null || !OutboxEventTypes.All.Contains(t)) ?? "null"}' is not an event type; they are {string.Join(", ", OutboxEventTypes.All)}."];
        if (r.Description is { Length: > 200 }) errors["description"] = ["At most 200 characters."];
        return errors;
    }

    /// <summary>The description as one line (a NUL failed the insert on PostgreSQL); null when nothing is left.</summary>
    static string? Description(OutboxApi.WebhookRequest r) =>
        Web.PlainText.OneLineOrNull(r.Description)?.Trim() is { Length: > 0 } d ? d : null;

    public static OutboxApi.WebhookDto Dto(WebhookEndpoint w) => new(w.Id, w.Url, [.. EventTypes(w)], w.Description, w.Enabled, w.CreatedAt);

    public static string[] EventTypes(WebhookEndpoint w) => w.EventTypes.Split(',', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The team's webhook, or null (another team's is not found).</summary>
    public static Task<WebhookEndpoint?> FindAsync(AppDbContext db, CurrentUser me, Guid id, CancellationToken ct) =>
        db.Webhooks.FirstOrDefaultAsync(x => x.Id == id && x.TeamId == me.TeamId, ct);

    public static async Task<List<WebhookEndpoint>> ListAsync(AppDbContext db, CurrentUser me, CancellationToken ct) =>
        await db.Webhooks.Where(x => x.TeamId == me.TeamId).OrderBy(x => x.CreatedAt).AsNoTracking().ToListAsync(ct);

    /// <summary>A new webhook and its signing secret (the only time it is readable), or the problems by field.</summary>
    public static async Task<(OutboxApi.WebhookCreated? Created, Dictionary<string, string[]> Errors)> CreateAsync(AppDbContext db, CurrentUser me,
        OutboxApi.WebhookRequest request, WebhookGuard guard, IDataProtectionProvider protection, TimeProvider clock, CancellationToken ct)
    {
        var errors = Validate(request, guard);
        if (errors.Count > 0) return (null, errors);
        var secret = WebhookSignature.NewSecret();
        var hook = new WebhookEndpoint
        {
            TeamId = me.TeamId, Url = request.Url!.Trim(), ProtectedSecret = protection.CreateProtector(WebhookTarget.ProtectorPurpose).Protect(secret),
            EventTypes = string.Join(',', request.EventTypes!.Distinct()), Description = Description(request), Enabled = request.Enabled ?? true,
            CreatedAt = clock.GetUtcNow(),
        };
        db.Webhooks.Add(hook);
        await db.SaveChangesAsync(ct);
        return (new OutboxApi.WebhookCreated(Dto(hook), secret), errors);
    }

    /// <summary>Changes the webhook (an absent Enabled keeps its state); the problems by field, none when saved.</summary>
    public static async Task<Dictionary<string, string[]>> UpdateAsync(AppDbContext db, WebhookEndpoint hook, OutboxApi.WebhookRequest request, WebhookGuard guard,
        CancellationToken ct)
    {
        var errors = Validate(request, guard);
        if (errors.Count > 0) return errors;
        hook.Url = request.Url!.Trim();
        hook.EventTypes = string.Join(',', request.EventTypes!.Distinct());
        hook.Description = Description(request);
        hook.Enabled = request.Enabled ?? hook.Enabled;
        await db.SaveChangesAsync(ct);
        return errors;
    }

    /// <summary>A new signing secret, returned this once; the old one stops working at once.</summary>
    public static async Task<string> RotateAsync(AppDbContext db, WebhookEndpoint hook, IDataProtectionProvider protection, CancellationToken ct)
    {
        var secret = WebhookSignature.NewSecret();
        hook.ProtectedSecret = protection.CreateProtector(WebhookTarget.ProtectorPurpose).Protect(secret);
        await db.SaveChangesAsync(ct);
        return secret;
    }

    /// <summary>Deletes the team's webhook; false when there is none (its pending deliveries become dead letters when next tried).</summary>
    public static async Task<bool> DeleteAsync(AppDbContext db, CurrentUser me, Guid id, CancellationToken ct) =>
        await db.Webhooks.Where(x => x.Id == id && x.TeamId == me.TeamId).ExecuteDeleteAsync(ct) > 0;

    /// <summary>The state words the delivery log uses (pending, delivered, dead, skipped).</summary>
    public static string Word(DeliveryState s) => s.ToString().ToLowerInvariant();

    public static bool TryState(string? word, out DeliveryState state) =>
        Enum.TryParse(word, ignoreCase: true, out state) && Enum.IsDefined(state);

    /// <summary>
    /// How many of a delivery's attempts the delivery log shows, the latest. A delivery that keeps being tried (replayed
    /// again and again, or from before waits were logged once) may have thousands, and the log answers up to 500
    /// deliveries at a time.
    /// </summary>
    public const int AttemptsShown = 50;

    /// <summary>
    /// The team's deliveries, newest first, with their latest attempts (<see cref="AttemptsShown"/>), optionally of one
    /// target, one kind of target, one state, and older than one delivery (<paramref name="before"/>: the next page).
    /// </summary>
    public static async Task<List<OutboxApi.DeliveryDto>> DeliveriesAsync(AppDbContext db, CurrentUser me, Guid? target, string? kind, DeliveryState? state, int take,
        CancellationToken ct, long? id = null, long? before = null)
    {
        var q = db.OutboxDeliveries.Where(x => x.TeamId == me.TeamId);
        if (id is { } one) q = q.Where(x => x.Id == one);
        if (before is { } older) q = q.Where(x => x.Id < older);
        if (target is { } t) q = q.Where(x => x.TargetId == t);
        if (kind is not null) q = q.Where(x => x.TargetKind == kind);
        if (state is { } s) q = q.Where(x => x.State == s);
        var rows = await q.OrderByDescending(x => x.Id).Take(Math.Clamp(take, 1, 500)).AsNoTracking().ToListAsync(ct);
        var ids = rows.Select(r => r.Id).ToList();
        // The latest of each delivery's attempts (ROW_NUMBER over the deliveries' attempts only) and how many there are.
        var logs = await db.DeliveryAttempts.Where(a => ids.Contains(a.DeliveryId)).AsNoTracking().GroupBy(a => a.DeliveryId)
            .Select(g => new { g.Key, Logged = g.Count(), Latest = g.OrderByDescending(a => a.Id).Take(AttemptsShown).ToList() })
            .ToDictionaryAsync(g => g.Key, ct);
        return [.. rows.Select(r =>
        {
            var (logged, shown) = logs.TryGetValue(r.Id, out var l) ? (l.Logged, l.Latest.OrderBy(a => a.Id).ToList()) : (0, []);
            return new OutboxApi.DeliveryDto(r.Id, r.TargetKind, r.TargetId, r.EventType, r.IdempotencyKey, r.State, r.Attempts, r.CreatedAt,
                r.NextAttemptAt, r.DeliveredAt, r.LastError,
                [.. shown.Select((a, i) => new OutboxApi.AttemptDto(a.At, a.StatusCode, a.Outcome, a.Detail, a.DurationMs, logged - shown.Count + i + 1))], logged);
        })];
    }

    /// <summary>Replays the team's dead letter: the count replayed (0 when it is not dead), or null when the team has no such delivery.</summary>
    public static async Task<int?> ReplayOneAsync(AppDbContext db, CurrentUser me, long id, TimeProvider clock, OutboxSignal signal, CancellationToken ct)
    {
        if (!await db.OutboxDeliveries.AnyAsync(x => x.Id == id && x.TeamId == me.TeamId, ct)) return null;
        var n = await OutboxApi.Replay(db, db.OutboxDeliveries.Where(x => x.Id == id && x.TeamId == me.TeamId), clock, ct);
        signal.Poke();
        return n;
    }

    /// <summary>Replays every dead letter of the team (or of one target); the count replayed.</summary>
    public static async Task<int> ReplayDeadAsync(AppDbContext db, CurrentUser me, Guid? target, TimeProvider clock, OutboxSignal signal, CancellationToken ct)
    {
        var q = db.OutboxDeliveries.Where(x => x.TeamId == me.TeamId);
        if (target is { } t) q = q.Where(x => x.TargetId == t);
        var n = await OutboxApi.Replay(db, q, clock, ct);
        signal.Poke();
        return n;
    }
}
