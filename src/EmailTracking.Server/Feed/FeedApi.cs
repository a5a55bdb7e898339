using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Feed;

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

/// <summary>
/// The live feed as server-sent events: <c>activity</c> for each new event, <c>verdict</c> when a person's event shown
/// before is taken back (<see cref="VerdictChange"/>). The SSE id is a cursor of both, <c>E:C</c> (the last event
/// id and the last verdict-change id sent), so a client that reconnects with Last-Event-ID (browsers do it by
/// themselves) gets exactly what it missed: the stream reads from the database, never from a buffer in one process.
/// </summary>
public static class FeedApi
{
    static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    /// <summary>At most this many events, and this many changes, per read.</summary>
    const int Page = 200;

    public static RouteGroupBuilder MapFeed(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/feed").RequireAuthorization(Auth.ApiPolicy).WithTags("Feed");
        g.MapGet("/", Stream)
            .WithSummary("Live activity as server-sent events")
            .WithDescription("scope=team (admins) streams the team's activity; scope=mine (the default) the user's own. Events: `activity` (a new event) and `verdict` (an event sent " +
                             "before as a person's is now a machine's or the sender's own: take it back). Each SSE id is a cursor `E:C`; resume " +
                             "with the Last-Event-ID header, or with ?after=E&changes=C (what a page showed). Without a cursor the stream starts " +
                             "with what happens next; with only an event id, with the verdict changes that happen next.");
        return g;
    }

    /// <summary>A feed cursor: <c>E:C</c>, or <c>E</c> alone (then C is unknown).</summary>
    internal static bool TryParseCursor(string? text, out long events, out long? changes)
    {
        events = 0;
        changes = null;
        if (string.IsNullOrEmpty(text) || text.Length > 41) return false;
        var colon = text.IndexOf(':');
        var first = colon < 0 ? text : text[..colon];
        if (!long.TryParse(first, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out events)) return false;
        if (colon < 0) return true;
        if (!long.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var c))
        {
            return false;
        }
        changes = c;
        return true;
    }

    static async Task Stream(HttpContext http, AppDbContext db, FeedNotifier notifier, IOptions<JsonOptions> json, IOptions<FeedOptions> feedOptions,
        TimeProvider clock, IHostApplicationLifetime lifetime, string? scope, long? after, long? changes, CancellationToken requestAborted)
    {
        // A stream ends when the client goes or the server stops (clients reconnect with Last-Event-ID elsewhere).
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, lifetime.ApplicationStopping);
        var ct = linked.Token;
        var user = CurrentUser.Required(http.User);
        // A scope the feed does not have was read as "mine": scope=teams streamed the asker's own messages only, and the
        // team's activity looked missing without a word. So was a negative position: the stream started from now.
        if (!string.IsNullOrEmpty(scope) && !string.Equals(scope, "team", StringComparison.OrdinalIgnoreCase)
            && !string.Equals(scope, "mine", StringComparison.OrdinalIgnoreCase))
        {
            await Results.Problem(statusCode: 400, title: "Unknown feed scope.",
                detail: "scope is mine (your own messages, the default) or team (the team's, for team admins).").ExecuteAsync(http);
            return;
        }
        if (after < 0 || changes < 0)
        {
            await Results.Problem(statusCode: 400, title: "A feed position is 0 or more.",
                detail: "after and changes are the ids of the last event and verdict change received (the E and C of an SSE id E:C); leave them out to start from now.")
                .ExecuteAsync(http);
            return;
        }
        var feedScope = string.Equals(scope, "team", StringComparison.OrdinalIgnoreCase) ? FeedScope.Team : FeedScope.Mine;
        if (feedScope == FeedScope.Team && !user.IsAdmin)
        {
            await Results.Problem(statusCode: 403, title: "Only team admins can follow the team's feed.").ExecuteAsync(http);
            return;
        }

        long last;
        long? lastChange;
        var givenCursor = true;
        string? lastEventId = http.Request.Headers["Last-Event-ID"];
        if (TryParseCursor(lastEventId, out var resume, out var resumeChanges))
        {
            (last, lastChange) = (resume, resumeChanges);
        }
        else if (!string.IsNullOrEmpty(lastEventId))
        {
            // Not a position this feed gave: starting from now (or from ?after=) instead would lose, unsaid, what
            // happened since the position the client meant.
            await Results.Problem(statusCode: 400, title: "Last-Event-ID is not a feed cursor.",
                detail: "Resume with the id of the last event received (E:C, or E alone), or leave Last-Event-ID out to start from now.").ExecuteAsync(http);
            return;
        }
        else if (after is >= 0)
        {
            (last, lastChange) = (after.Value, changes is >= 0 ? changes : null);
        }
        else
        {
            givenCursor = false;
            await using var start = await ReadSnapshot.BeginAsync(db, ct);
            (last, lastChange) = (await ActivityQuery.LatestIdAsync(db, user, feedScope, ct), await ActivityQuery.LatestChangeIdAsync(db, user, feedScope, ct));
        }
        if (givenCursor && await PastTheEndAsync(db, last, lastChange, ct))
        {
            // Every id this feed sends is one it read, and ids are never taken back: a cursor past the last id was given
            // by another database (one since restored from a backup or made anew, another deployment). Streamed from
            // there, the events that bring the ids up to it would never be shown, and the page would go quiet unsaid.
            await Results.Problem(statusCode: 400, title: "The feed cursor is past the end of this feed.",
                detail: "It comes from another database (restored or replaced since). Reload the page, or leave Last-Event-ID out to start from now.").ExecuteAsync(http);
            return;
        }
        // A cursor from before verdict changes were sent (or a page that did not say): from the changes that come next.
        var lastChangeId = lastChange ?? await ActivityQuery.LatestChangeIdAsync(db, user, feedScope, ct);

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
                    // Closed without an end event: the client connects again with the token it has now (the add-in gets
                    // a fresh one), resuming from its last event, and is admitted or refused afresh.
                    if (await SignInLapsedAsync(db, http.User, user, clock, ct)) return;
                    if (await NoLongerAllowedAsync(db, http.User, user, feedScope, clock, ct) is { } reason)
                    {
                        await http.Response.WriteAsync($"event: end\ndata: {JsonSerializer.Serialize(new { reason }, options)}\n\n", ct);
                        await http.Response.Body.FlushAsync(ct);
                        return;
                    }
                    checkedAt = clock.GetTimestamp();
                }
                var wake = feedScope == FeedScope.Team ? notifier.NextForTeam(user.TeamId) : notifier.NextForUser(user.Id);
                List<ActivityItem> items;
                List<VerdictItem> retracted;
                long readChanges;
                // Events and changes from one snapshot: an event read here already has every change of the snapshot.
                // So only changes of events sent before this round go out; the others are in the events as they are
                // sent now. That holds only when every change of the snapshot was read: while there are more than a
                // page of them, no events go out, or an event sent now with its new verdict could have its change
                // read (and sent) in a later round.
                await using (var snapshot = await ReadSnapshot.BeginAsync(db, ct))
                {
                    var sentBefore = last;
                    var read = await ActivityQuery.VisibleChanges(db, user, feedScope).Where(c => c.Id > lastChangeId)
                        .OrderBy(c => c.Id).Take(Page).ToListAsync(ct);
                    readChanges = read.Count;
                    retracted = await ActivityQuery.ProjectChangesAsync(db, read.Where(c => c.EventId <= sentBefore).ToList(), sentBefore, ct);
                    items = read.Count == Page
                        ? []
                        : await ActivityQuery.Project(db, ActivityQuery.Visible(db, user, feedScope).Where(e => e.Id > last))
                            .OrderBy(i => i.Id).Take(Page).ToListAsync(ct);
                    // Changes of events not sent yet are passed over: the cursor moves past them with the events below
                    // (there is at least one such event whenever one is passed over), or, while changes fill whole
                    // pages, they are passed over again from an older cursor (their events are still not sent).
                    if (read.Count > 0) lastChangeId = read[^1].Id;
                }
                foreach (var change in retracted)
                {
                    await http.Response.WriteAsync($"id: {last}:{change.Change}\nevent: verdict\ndata: {JsonSerializer.Serialize(change, options)}\n\n", ct);
                }
                foreach (var item in items)
                {
                    await http.Response.WriteAsync($"id: {item.Id}:{lastChangeId}\nevent: activity\ndata: {JsonSerializer.Serialize(item, options)}\n\n", ct);
                    last = item.Id;
                }
                if (items.Count > 0 || retracted.Count > 0)
                {
                    await http.Response.Body.FlushAsync(ct);
                }
                if (items.Count == Page || readChanges == Page) continue;
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

    /// <summary>
    /// Whether a cursor is past every event and verdict change this database has (anyone's: ids are shared by all
    /// streams). Read before the stream starts, so its ids only grow from here.
    /// </summary>
    static async Task<bool> PastTheEndAsync(AppDbContext db, long events, long? changes, CancellationToken ct)
    {
        if (events > (await db.Events.Select(e => (long?)e.Id).MaxAsync(ct) ?? 0)) return true;
        return changes is { } c && c > (await db.VerdictChanges.Select(x => (long?)x.Id).MaxAsync(ct) ?? 0);
    }

    /// <summary>
    /// Whether the Microsoft access token the stream was opened with (the Outlook add-in's) would no longer be taken: past
    /// its lifetime, or its Microsoft account no longer signs in as this user (an admin unlinked it). The stream went on
    /// regardless, for as long as its connection held. An API token's or the cookie's streams have neither claim.
    /// </summary>
    static async Task<bool> SignInLapsedAsync(AppDbContext db, System.Security.Claims.ClaimsPrincipal principal, CurrentUser user, TimeProvider clock,
        CancellationToken ct)
    {
        if (long.TryParse(principal.FindFirst(AccountClaims.TakenUntilClaim)?.Value, System.Globalization.NumberStyles.Integer,
                System.Globalization.CultureInfo.InvariantCulture, out var until)
            && clock.GetUtcNow().ToUnixTimeSeconds() >= until)
        {
            return true;
        }
        if (principal.FindFirst(AccountClaims.MicrosoftAccountClaim)?.Value is not { } key || key.Split('/') is not [var tenant, var objectId]) return false;
        // As the sign-in finds the user: the account linked on the link page first, then the one bound at the first sign-in.
        var bound = await Outlook.MicrosoftSignIn.LinkedUserAsync(db, tenant, objectId, ct)
            ?? await db.UserLogins.Where(l => l.LoginProvider == Outlook.MicrosoftSignIn.LoginProvider && l.ProviderKey == key)
                .Select(l => (Guid?)l.UserId).FirstOrDefaultAsync(ct);
        return bound != user.Id;
    }

    /// <summary>Why whoever opened the stream may no longer read it; null while they may.</summary>
    static async Task<string?> NoLongerAllowedAsync(AppDbContext db, System.Security.Claims.ClaimsPrincipal principal, CurrentUser user, FeedScope scope,
        TimeProvider clock, CancellationToken ct)
    {
        if (Guid.TryParse(principal.FindFirst(AccountClaims.ApiTokenClaim)?.Value, out var tokenId)
            && !await db.ApiTokens.AnyAsync(t => t.Id == tokenId && t.RevokedAt == null, ct))
            return "The API token this stream was opened with was revoked.";
        var row = await db.Users.Where(u => u.Id == user.Id).Select(u => new { u.TeamId, u.Role, u.LockoutEnd, u.SecurityStamp }).FirstOrDefaultAsync(ct);
        if (row is null) return "The account no longer exists.";
        if (Accounts.Auth.IsShut(row.LockoutEnd, clock.GetUtcNow())) return "The account is locked.";
        if (Accounts.Auth.StampChanged(principal, row.SecurityStamp)) return "The account's password was changed.";
        if (row.TeamId != user.TeamId) return "The account is no longer in this team.";
        if (scope == FeedScope.Team && row.Role != TeamRole.Admin) return "Only team admins can follow the team's feed.";
        return null;
    }
}
