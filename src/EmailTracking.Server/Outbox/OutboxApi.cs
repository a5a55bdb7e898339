using System.Collections.Concurrent;
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
    /// <param name="Number">Which of the delivery's logged attempts it is, from 1.</param>
    public sealed record AttemptDto(DateTimeOffset At, int? StatusCode, string Outcome, string? Detail, int DurationMs, int Number);
    /// <param name="Log">The latest of its logged attempts (at most <see cref="WebhookRules.AttemptsShown"/>), oldest first.</param>
    /// <param name="Logged">How many attempts it has logged in all.</param>
    public sealed record DeliveryDto(long Id, string TargetKind, Guid TargetId, string EventType, string IdempotencyKey, DeliveryState State, int Attempts,
        DateTimeOffset CreatedAt, DateTimeOffset NextAttemptAt, DateTimeOffset? DeliveredAt, string? LastError, List<AttemptDto> Log, int Logged);
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
        d.MapGet("/deliveries", Deliveries).WithSummary("The delivery log: each event to each target, its state and every attempt (admins)")
            .WithDescription("Newest first, `take` at a time (100 unless told, at most 500). For the next page give the last delivery's `id` as `before`.");
        d.MapPost("/deliveries/{id:long}/replay", ReplayOne).WithSummary("Deliver a dead letter again (same idempotency key)");
        d.MapPost("/replay", ReplayDead).WithSummary("Deliver every dead letter of the team again (optionally one target's)");
    }

    public const string AdminsOnlyText = "Only a team admin can manage webhooks and the delivery log.";

    /// <summary>
    /// Why the caller may not use the webhooks or the delivery log (a 403), or null for a team admin. The Outlook add-in's
    /// Microsoft token is refused, an admin's too, as the Team API and token making refuse it: the add-in gets it silently
    /// for whoever opens Outlook, and a webhook made or pointed elsewhere with it would go on sending the team's
    /// recipients, subjects and answers to that URL after the token ran out and after the account was unlinked.
    /// </summary>
    static ProblemHttpResult? Refusal(HttpContext http, CurrentUser me)
    {
        return TeamApi.AddinRefusal(http, "Webhooks are not managed from the Outlook add-in.",
                   "Use the web app's Webhooks page, or a personal API token (Authorization: Bearer et_…) made on its API tokens page.")
               ?? (me.IsAdmin ? null : TypedResults.Problem(statusCode: 403, title: AdminsOnlyText));
    }

    static async Task<Results<Ok<List<WebhookDto>>, ProblemHttpResult>> List(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        return TypedResults.Ok((await WebhookRules.ListAsync(db, me, ct)).Select(WebhookRules.Dto).ToList());
    }

    static async Task<Results<Created<WebhookCreated>, ValidationProblem, ProblemHttpResult>> Create(WebhookRequest request, HttpContext http, AppDbContext db,
        WebhookGuard guard, IDataProtectionProvider protection, TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        var (created, errors) = await WebhookRules.CreateAsync(db, me, request, guard, protection, clock, ct);
        if (created is null) return TypedResults.ValidationProblem(errors);
        return TypedResults.Created($"/api/webhooks/{created.Webhook.Id}", created);
    }

    static async Task<Results<Ok<WebhookDto>, NotFound, ValidationProblem, ProblemHttpResult>> Update(Guid id, WebhookRequest request, HttpContext http, AppDbContext db,
        WebhookGuard guard, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        var hook = await WebhookRules.FindAsync(db, me, id, ct);
        if (hook is null) return TypedResults.NotFound();
        var errors = await WebhookRules.UpdateAsync(db, hook, request, guard, ct);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        return TypedResults.Ok(WebhookRules.Dto(hook));
    }

    static async Task<Results<NoContent, NotFound, ProblemHttpResult>> Delete(Guid id, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        return await WebhookRules.DeleteAsync(db, me, id, ct) ? TypedResults.NoContent() : TypedResults.NotFound();
    }

    static async Task<Results<Ok<WebhookCreated>, NotFound, ProblemHttpResult>> Rotate(Guid id, HttpContext http, AppDbContext db, IDataProtectionProvider protection,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        var hook = await WebhookRules.FindAsync(db, me, id, ct);
        if (hook is null) return TypedResults.NotFound();
        var secret = await WebhookRules.RotateAsync(db, hook, protection, ct);
        return TypedResults.Ok(new WebhookCreated(WebhookRules.Dto(hook), secret));
    }

    /// <param name="state">pending, delivered, dead or skipped.</param>
    /// <param name="before">Only deliveries older than this one (the last id of the page before): the log went no further than its newest 500.</param>
    static async Task<Results<Ok<List<DeliveryDto>>, ProblemHttpResult>> Deliveries(HttpContext http, AppDbContext db, Guid? target, string? state, int? take,
        long? before, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        // Fewer than one is a mistake, not a page (it answered one delivery); more than 500 is answered with 500.
        if (take < 1) return TypedResults.Problem(statusCode: 400, title: "take is at least 1.", detail: "take is how many deliveries to answer: at least 1 (at most 500 are answered).");
        if (before < 1) return TypedResults.Problem(statusCode: 400, title: "before is a delivery's id.", detail: "before is the id of the last delivery of the page before: 1 or more.");
        DeliveryState? s = null;
        if (state is not null)
        {
            if (!WebhookRules.TryState(state, out var parsed))
                return TypedResults.Problem(statusCode: 400, title: "Unknown delivery state.", detail: "state is pending, delivered, dead or skipped.");
            s = parsed;
        }
        return TypedResults.Ok(await WebhookRules.DeliveriesAsync(db, me, target, null, s, take ?? 100, ct, before: before));
    }

    static async Task<Results<Ok<ReplayResponse>, NotFound, ProblemHttpResult>> ReplayOne(long id, HttpContext http, AppDbContext db, TimeProvider clock, OutboxSignal signal,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        return await WebhookRules.ReplayOneAsync(db, me, id, clock, signal, ct) is { } n ? TypedResults.Ok(new ReplayResponse(n)) : TypedResults.NotFound();
    }

    static async Task<Results<Ok<ReplayResponse>, ProblemHttpResult>> ReplayDead(HttpContext http, AppDbContext db, TimeProvider clock, OutboxSignal signal, Guid? target,
        CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        return TypedResults.Ok(new ReplayResponse(await WebhookRules.ReplayDeadAsync(db, me, target, clock, signal, ct)));
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

/// <summary>
/// The outbox loop: dispatch new events into deliveries, then start delivering what is due; every poll interval or when
/// poked, and at once again while the dispatcher finds full batches. Each target's deliveries run as a lane of their
/// own that the loop does not wait for: a receiver that hangs until its timeout holds up only its own deliveries, while
/// new events keep being dispatched and other targets' deliveries keep going out. A target with a running lane is left
/// out of the next claims until its lane ends.
/// </summary>
public sealed class OutboxService(IServiceScopeFactory scopes, IOptions<OutboxOptions> options, OutboxSignal signal, ILogger<OutboxService> log) : BackgroundService
{
    public static readonly string Owner = Data.ServerInstance.Name;

    readonly ConcurrentDictionary<Guid, Task> running = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled) return;
        await Task.Yield();
        // At most this many lanes deliver at once; a claimed lane waits for a slot.
        using var slots = new SemaphoreSlim(Math.Max(1, options.Value.Concurrency));
        while (!stoppingToken.IsCancellationRequested)
        {
            var full = false;
            try
            {
                await using (var scope = scopes.CreateAsyncScope())
                {
                    (_, full) = await scope.ServiceProvider.GetRequiredService<OutboxDispatcher>().DispatchAsync(stoppingToken);
                }
                await using (var scope = scopes.CreateAsyncScope())
                {
                    var worker = scope.ServiceProvider.GetRequiredService<OutboxWorker>();
                    foreach (var lane in await worker.ClaimLanesAsync(Owner, [.. running.Keys], stoppingToken))
                    {
                        // The lane starts only once it is in the table, so that it cannot leave it before it is in it.
                        var listed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        running[lane.TargetId] = RunLaneAsync(lane, slots, listed.Task, stoppingToken);
                        listed.SetResult();
                    }
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "An outbox pass failed; the next one runs as usual");
            }
            // A pass that read a full batch goes again at once: every team's events go through the one cursor, and
            // read a batch per poll interval (1,000 events every 5 s) a burst above that would leave the backlog, and
            // every reply's and send's delivery behind it, growing for as long as it lasts.
            if (!full) await signal.WaitAsync(options.Value.PollInterval, TimeProvider.System, stoppingToken);
        }
        // Stopping: the lanes see the same token; what they leave unfinished keeps its lease and goes again later.
        try { await Task.WhenAll(running.Values); } catch (Exception) { }
    }

    async Task RunLaneAsync(OutboxWorker.Lane lane, SemaphoreSlim slots, Task listed, CancellationToken ct)
    {
        await listed;
        try
        {
            await slots.WaitAsync(ct);
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await scope.ServiceProvider.GetRequiredService<OutboxWorker>().DeliverLaneAsync(lane, Owner, ct);
            }
            finally
            {
                slots.Release();
            }
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            log.LogError(ex, "Deliveries to {Kind} {Target} failed; their leases run out and they go again", lane.Kind, lane.TargetId);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            running.TryRemove(lane.TargetId, out _);
            // The target is free again: what waited for it may be due now.
            signal.Poke();
        }
    }
}
