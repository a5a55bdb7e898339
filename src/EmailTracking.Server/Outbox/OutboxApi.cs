using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Outbox;

/// <summary>Webhooks (team admins), the delivery log and the replay of dead letters (REST).</summary>
public static class OutboxApi
{
    public sealed record WebhookRequest(string? Url, List<string>? EventTypes, string? Description, bool? Enabled);
    public sealed record WebhookDto(Guid Id, string Url, List<string> EventTypes, string? Description, bool Enabled, DateTimeOffset CreatedAt);
    /// <summary>The secret is shown once, when the webhook is made (or its secret rotated).</summary>
    public sealed record WebhookCreated(WebhookDto Webhook, string Secret);
    public sealed record AttemptDto(DateTimeOffset At, int? StatusCode, string Outcome, string? Detail, int DurationMs);
    public sealed record DeliveryDto(long Id, string TargetKind, Guid TargetId, string EventType, string IdempotencyKey, DeliveryState State, int Attempts,
        DateTimeOffset CreatedAt, DateTimeOffset NextAttemptAt, DateTimeOffset? DeliveredAt, string? LastError, List<AttemptDto> Log);
    public sealed record ReplayResponse(int Replayed);

    public static void MapOutbox(this IEndpointRouteBuilder app)
    {
        var w = app.MapGroup("/api/webhooks").RequireAuthorization(Auth.ApiPolicy).WithTags("Webhooks");
        w.MapGet("/", List).WithSummary("The team's webhooks (admins)");
        w.MapPost("/", Create).WithSummary("A webhook: https URL and event types; answers the signing secret once");
        w.MapPut("/{id:guid}", Update).WithSummary("Change a webhook's URL, event types or state");
        w.MapDelete("/{id:guid}", Delete).WithSummary("Delete a webhook (its pending deliveries become dead letters)");
        w.MapPost("/{id:guid}/secret", Rotate).WithSummary("A new signing secret, shown once");

        var d = app.MapGroup("/api/outbox").RequireAuthorization(Auth.ApiPolicy).WithTags("Webhooks");
        d.MapGet("/deliveries", Deliveries).WithSummary("The delivery log: each event to each target, its state and every attempt (admins)");
        d.MapPost("/deliveries/{id:long}/replay", ReplayOne).WithSummary("Deliver a dead letter again (same idempotency key)");
        d.MapPost("/replay", ReplayDead).WithSummary("Deliver every dead letter of the team again (optionally one target's)");
    }

    static ProblemHttpResult AdminsOnly() => TypedResults.Problem(statusCode: 403, title: "Only a team admin can manage webhooks and the delivery log.");

    static WebhookDto Dto(WebhookEndpoint w) => new(w.Id, w.Url, [.. w.EventTypes.Split(',', StringSplitOptions.RemoveEmptyEntries)], w.Description, w.Enabled, w.CreatedAt);

    static Dictionary<string, string[]> Validate(WebhookRequest r, WebhookGuard guard)
    {
        var errors = new Dictionary<string, string[]>();
        if (guard.Check(r.Url) is { } bad) errors["url"] = [bad];
        if (r.EventTypes is not { Count: > 0 } types) errors["eventTypes"] = [$"Choose at least one of: {string.Join(", ", OutboxEventTypes.All)}."];
        else if (types.FirstOrDefault(t => !OutboxEventTypes.All.Contains(t)) is { } unknown)
            errors["eventTypes"] = [$"'{unknown}' is not an event type; they are {string.Join(", ", OutboxEventTypes.All)}."];
        if (r.Description is { Length: > 200 }) errors["description"] = ["At most 200 characters."];
        return errors;
    }

    static async Task<Results<Ok<List<WebhookDto>>, ProblemHttpResult>> List(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        return TypedResults.Ok((await db.Webhooks.Where(x => x.TeamId == me.TeamId).OrderBy(x => x.CreatedAt).AsNoTracking().ToListAsync(ct)).Select(Dto).ToList());
    }

    static async Task<Results<Created<WebhookCreated>, ValidationProblem, ProblemHttpResult>> Create(WebhookRequest request, HttpContext http, AppDbContext db,
        WebhookGuard guard, IDataProtectionProvider protection, TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        var errors = Validate(request, guard);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var secret = WebhookSignature.NewSecret();
        var hook = new WebhookEndpoint
        {
            TeamId = me.TeamId, Url = request.Url!.Trim(), ProtectedSecret = protection.CreateProtector(WebhookTarget.ProtectorPurpose).Protect(secret),
            EventTypes = string.Join(',', request.EventTypes!.Distinct()), Description = request.Description?.Trim(), Enabled = request.Enabled ?? true,
            CreatedAt = clock.GetUtcNow(),
        };
        db.Webhooks.Add(hook);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/webhooks/{hook.Id}", new WebhookCreated(Dto(hook), secret));
    }

    static async Task<Results<Ok<WebhookDto>, NotFound, ValidationProblem, ProblemHttpResult>> Update(Guid id, WebhookRequest request, HttpContext http, AppDbContext db,
        WebhookGuard guard, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        var hook = await db.Webhooks.FirstOrDefaultAsync(x => x.Id == id && x.TeamId == me.TeamId, ct);
        if (hook is null) return TypedResults.NotFound();
        var errors = Validate(request, guard);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        hook.Url = request.Url!.Trim();
        hook.EventTypes = string.Join(',', request.EventTypes!.Distinct());
        hook.Description = request.Description?.Trim();
        hook.Enabled = request.Enabled ?? hook.Enabled;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(Dto(hook));
    }

    static async Task<Results<NoContent, NotFound, ProblemHttpResult>> Delete(Guid id, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        var n = await db.Webhooks.Where(x => x.Id == id && x.TeamId == me.TeamId).ExecuteDeleteAsync(ct);
        return n == 0 ? TypedResults.NotFound() : TypedResults.NoContent();
    }

    static async Task<Results<Ok<WebhookCreated>, NotFound, ProblemHttpResult>> Rotate(Guid id, HttpContext http, AppDbContext db, IDataProtectionProvider protection,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        var hook = await db.Webhooks.FirstOrDefaultAsync(x => x.Id == id && x.TeamId == me.TeamId, ct);
        if (hook is null) return TypedResults.NotFound();
        var secret = WebhookSignature.NewSecret();
        hook.ProtectedSecret = protection.CreateProtector(WebhookTarget.ProtectorPurpose).Protect(secret);
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new WebhookCreated(Dto(hook), secret));
    }

    /// <param name="state">pending, delivered, dead or skipped.</param>
    static async Task<Results<Ok<List<DeliveryDto>>, ProblemHttpResult>> Deliveries(HttpContext http, AppDbContext db, Guid? target, string? state, int? take,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        var q = db.OutboxDeliveries.Where(x => x.TeamId == me.TeamId);
        if (target is { } t) q = q.Where(x => x.TargetId == t);
        if (state is not null)
        {
            if (!Enum.TryParse<DeliveryState>(state, ignoreCase: true, out var s) || !Enum.IsDefined(s))
                return TypedResults.Problem(statusCode: 400, title: "Unknown delivery state.", detail: "state is pending, delivered, dead or skipped.");
            q = q.Where(x => x.State == s);
        }
        var rows = await q.OrderByDescending(x => x.Id).Take(Math.Clamp(take ?? 100, 1, 500)).AsNoTracking().ToListAsync(ct);
        var ids = rows.Select(r => r.Id).ToList();
        var log = (await db.DeliveryAttempts.Where(a => ids.Contains(a.DeliveryId)).OrderBy(a => a.Id).AsNoTracking().ToListAsync(ct)).ToLookup(a => a.DeliveryId);
        return TypedResults.Ok(rows.Select(r => new DeliveryDto(r.Id, r.TargetKind, r.TargetId, r.EventType, r.IdempotencyKey, r.State, r.Attempts, r.CreatedAt,
            r.NextAttemptAt, r.DeliveredAt, r.LastError, [.. log[r.Id].Select(a => new AttemptDto(a.At, a.StatusCode, a.Outcome, a.Detail, a.DurationMs))])).ToList());
    }

    static async Task<Results<Ok<ReplayResponse>, NotFound, ProblemHttpResult>> ReplayOne(long id, HttpContext http, AppDbContext db, TimeProvider clock, OutboxSignal signal,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        if (!await db.OutboxDeliveries.AnyAsync(x => x.Id == id && x.TeamId == me.TeamId, ct)) return TypedResults.NotFound();
        var n = await Replay(db, db.OutboxDeliveries.Where(x => x.Id == id && x.TeamId == me.TeamId), clock, ct);
        signal.Poke();
        return TypedResults.Ok(new ReplayResponse(n));
    }

    static async Task<Results<Ok<ReplayResponse>, ProblemHttpResult>> ReplayDead(HttpContext http, AppDbContext db, TimeProvider clock, OutboxSignal signal, Guid? target,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return AdminsOnly();
        var q = db.OutboxDeliveries.Where(x => x.TeamId == me.TeamId);
        if (target is { } t) q = q.Where(x => x.TargetId == t);
        var n = await Replay(db, q, clock, ct);
        signal.Poke();
        return TypedResults.Ok(new ReplayResponse(n));
    }

    /// <summary>Dead letters among these go again from now, with their attempts counted afresh and the same idempotency key.</summary>
    public static Task<int> Replay(AppDbContext db, IQueryable<OutboxDelivery> deliveries, TimeProvider clock, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        return deliveries.Where(x => x.State == DeliveryState.Dead).ExecuteUpdateAsync(u => u
            .SetProperty(x => x.State, DeliveryState.Pending).SetProperty(x => x.Attempts, 0).SetProperty(x => x.NextAttemptAt, now)
            .SetProperty(x => x.LeaseOwner, (string?)null).SetProperty(x => x.LeaseUntil, (DateTimeOffset?)null), ct);
    }
}

/// <summary>Wakes the outbox loop early (a replay).</summary>
public sealed class OutboxSignal : Web.WakeSignal;

/// <summary>The outbox loop: dispatch new events into deliveries, then deliver what is due; every poll interval or when poked.</summary>
public sealed class OutboxService(IServiceScopeFactory scopes, IOptions<OutboxOptions> options, OutboxSignal signal, ILogger<OutboxService> log) : BackgroundService
{
    public static readonly string Owner = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled) return;
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using (var scope = scopes.CreateAsyncScope())
                {
                    await scope.ServiceProvider.GetRequiredService<OutboxDispatcher>().DispatchAsync(stoppingToken);
                }
                await using (var scope = scopes.CreateAsyncScope())
                {
                    await scope.ServiceProvider.GetRequiredService<OutboxWorker>().DeliverAsync(Owner, stoppingToken);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "An outbox pass failed; the next one runs as usual");
            }
            await signal.WaitAsync(options.Value.PollInterval, TimeProvider.System, stoppingToken);
        }
    }
}
