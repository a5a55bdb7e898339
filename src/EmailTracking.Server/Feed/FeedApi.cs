using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Feed;

/// <summary>
/// The live feed as server-sent events. Each event's SSE id is the event row's id, so a client that reconnects with
/// Last-Event-ID (browsers do it by themselves) gets exactly what it missed: the stream reads from the database,
/// never from a buffer in one process.
/// </summary>
/// <summary>Settings of the live feed (section <c>Feed</c>).</summary>
public sealed class FeedOptions
{
    public const string Section = "Feed";

    /// <summary>
    /// How often an open stream checks that whoever opened it may still read it: the API token not revoked, the
    /// account not deleted or locked, still in the team, still an admin for the team's feed. A stream that may not
    /// goes on no longer: it sends an <c>end</c> event with the reason and closes.
    /// </summary>
    public TimeSpan RecheckInterval { get; set; } = TimeSpan.FromSeconds(30);
}

public static class FeedApi
{
    static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    public static RouteGroupBuilder MapFeed(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/feed").RequireAuthorization(Auth.ApiPolicy).WithTags("Feed");
        g.MapGet("/", Stream)
            .WithSummary("Live activity as server-sent events")
            .WithDescription("scope=team (admins) streams the team's activity. Resume with the Last-Event-ID header or ?after=<id>; without either the stream starts with new events only.");
        return g;
    }

    static async Task Stream(HttpContext http, AppDbContext db, FeedNotifier notifier, IOptions<JsonOptions> json, IOptions<FeedOptions> feedOptions,
        TimeProvider clock, IHostApplicationLifetime lifetime, string? scope, long? after, CancellationToken requestAborted)
    {
        // A stream ends when the client goes or the server stops (clients reconnect with Last-Event-ID elsewhere).
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, lifetime.ApplicationStopping);
        var ct = linked.Token;
        var user = CurrentUser.Required(http.User);
        var feedScope = string.Equals(scope, "team", StringComparison.OrdinalIgnoreCase) ? FeedScope.Team : FeedScope.Mine;
        if (feedScope == FeedScope.Team && !user.IsAdmin)
        {
            await Results.Problem(statusCode: 403, title: "Only team admins can follow the team's feed.").ExecuteAsync(http);
            return;
        }

        long last;
        if (long.TryParse(http.Request.Headers["Last-Event-ID"], out var resume) && resume >= 0) last = resume;
        else if (after is >= 0) last = after.Value;
        else last = await ActivityQuery.LatestIdAsync(db, user, feedScope, ct);

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.WriteAsync("retry: 2000\n\n", ct);
        await http.Response.Body.FlushAsync(ct);

        var options = json.Value.SerializerOptions;
        db.ChangeTracker.QueryTrackingBehavior = QueryTrackingBehavior.NoTracking;
        var recheck = feedOptions.Value.RecheckInterval > TimeSpan.Zero ? feedOptions.Value.RecheckInterval : TimeSpan.FromSeconds(30);
        long? checkedAt = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (checkedAt is not { } at || clock.GetElapsedTime(at) >= recheck)
                {
                    if (await NoLongerAllowedAsync(db, http.User, user, feedScope, clock, ct) is { } reason)
                    {
                        await http.Response.WriteAsync($"event: end\ndata: {JsonSerializer.Serialize(new { reason }, options)}\n\n", ct);
                        await http.Response.Body.FlushAsync(ct);
                        return;
                    }
                    checkedAt = clock.GetTimestamp();
                }
                var wake = feedScope == FeedScope.Team ? notifier.NextForTeam(user.TeamId) : notifier.NextForUser(user.Id);
                var items = await ActivityQuery.Project(db, ActivityQuery.Visible(db, user, feedScope).Where(e => e.Id > last))
                    .OrderBy(i => i.Id).Take(200).ToListAsync(ct);
                foreach (var item in items)
                {
                    await http.Response.WriteAsync($"id: {item.Id}\nevent: activity\ndata: {JsonSerializer.Serialize(item, options)}\n\n", ct);
                    last = item.Id;
                }
                if (items.Count > 0)
                {
                    await http.Response.Body.FlushAsync(ct);
                    if (items.Count == 200) continue;
                }
                try
                {
                    await wake.WaitAsync(Heartbeat < recheck ? Heartbeat : recheck, ct);
                }
                catch (TimeoutException)
                {
                    await http.Response.WriteAsync(": keep-alive\n\n", ct);
                    await http.Response.Body.FlushAsync(ct);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Why whoever opened the stream may no longer read it; null while they may.</summary>
    static async Task<string?> NoLongerAllowedAsync(AppDbContext db, System.Security.Claims.ClaimsPrincipal principal, CurrentUser user, FeedScope scope,
        TimeProvider clock, CancellationToken ct)
    {
        if (Guid.TryParse(principal.FindFirst(AccountClaims.ApiTokenClaim)?.Value, out var tokenId)
            && !await db.ApiTokens.AnyAsync(t => t.Id == tokenId && t.RevokedAt == null, ct))
            return "The API token this stream was opened with was revoked.";
        var row = await db.Users.Where(u => u.Id == user.Id).Select(u => new { u.TeamId, u.Role, u.LockoutEnd }).FirstOrDefaultAsync(ct);
        if (row is null) return "The account no longer exists.";
        if (row.LockoutEnd is { } end && end > clock.GetUtcNow()) return "The account is locked.";
        if (row.TeamId != user.TeamId) return "The account is no longer in this team.";
        if (scope == FeedScope.Team && row.Role != TeamRole.Admin) return "Only team admins can follow the team's feed.";
        return null;
    }
}
