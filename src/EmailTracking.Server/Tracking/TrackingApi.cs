using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Tracking.Classification;
using EmailTracking.Server.Web;
using Microsoft.EntityFrameworkCore;
using Expr = System.Linq.Expressions.Expression;

namespace EmailTracking.Server.Tracking;

/// <summary>
/// The pixel and the click redirect: resolve the token, decide the verdict, record, answer. The pixel always answers
/// with the image; a click answers with the stored target or a plain 404, never a redirect anywhere else.
/// </summary>
/// <summary>How close to the sender opening their message in Gmail a Gmail image-proxy fetch counts as theirs.</summary>
public static class SenderView
{
    /// <summary>Fetches up to this long after the sender opened the message.</summary>
    public static readonly TimeSpan After = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Fetches this long before the add-on said so: Gmail loads the images while the add-on's request is on its way.
    /// </summary>
    public static readonly TimeSpan Before = TimeSpan.FromSeconds(10);

    public const string Reason = "sender viewed the message in Gmail (add-on) as this proxy fetch arrived";
}

public static class TrackingApi
{
    /// <summary>A transparent 1×1 GIF.</summary>
    internal static readonly byte[] Gif = Convert.FromBase64String("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7");

    /// <summary>How long a hit waits for its batch to commit before the answer goes out anyway.</summary>
    static readonly TimeSpan RecordTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Maps the pixel and the click, which run straight from routing (<c>ShortCircuit</c>): none of the middleware after
    /// it (exception page, status-code pages, static files, first-run redirect, authentication, authorization, Swagger)
    /// has anything to do with them, and each async middleware a request passes through costs a hit that waits for its
    /// commit an allocation for its state; through all of them, a pixel hit allocated 6.6 KiB, against 3.1–3.4 now (the
    /// bare endpoint 4.2 and 2.1; bench/pixel). Both handle their own errors and set their own headers.
    /// </summary>
    public static void MapTracking(this IEndpointRouteBuilder app, bool benchBaseline = false)
    {
        if (benchBaseline)
        {
            // bench/pixel's baseline: the same bytes and headers through the same pipeline, with no lookup and no record.
            app.MapGet("/bench/bare/{token}", (HttpContext http, string token) =>
            {
                WriteTrackingHeaders(http.Response);
                return Results.Bytes(Gif, "image/gif");
            }).ExcludeFromDescription().AllowAnonymous().ShortCircuit();
            // bench/pixel's middle step: the pixel's own code, token lookup and verdict included, with the record left
            // out. Between the bare endpoint and the pixel it shows what the lookup and verdict cost and what recording does.
            app.MapGet("/bench/verdict/{token}", (HttpContext http, string token, TrackingTargets targets, HitClassifier classifier,
                EventRecorder recorder, DeviceCookie device, IServiceScopeFactory scopes, TimeProvider clock, ILoggerFactory logs) =>
                Pixel(http, token, targets, classifier, recorder, device, scopes, clock, logs, record: false))
                .ExcludeFromDescription().AllowAnonymous().ShortCircuit();
            // bench/pixel reads the process's garbage-collector figures before and after each run, to report what a hit
            // allocates and how long collections paused the server for it.
            app.MapGet("/bench/gc", () => Results.Json(new
            {
                allocatedBytes = GC.GetTotalAllocatedBytes(precise: false),
                gen0 = GC.CollectionCount(0),
                gen1 = GC.CollectionCount(1),
                gen2 = GC.CollectionCount(2),
                pauseMs = GC.GetTotalPauseDuration().TotalMilliseconds,
            })).ExcludeFromDescription().AllowAnonymous();
        }
        app.MapMethods("/o/{token}", [HttpMethods.Get, HttpMethods.Head], (HttpContext http, string token, TrackingTargets targets,
            HitClassifier classifier, EventRecorder recorder, DeviceCookie device, IServiceScopeFactory scopes, TimeProvider clock,
            ILoggerFactory logs) => Pixel(http, token, targets, classifier, recorder, device, scopes, clock, logs, record: true)).ExcludeFromDescription().AllowAnonymous().ShortCircuit();
        app.MapMethods("/c/{token}", [HttpMethods.Get, HttpMethods.Head], Click).ExcludeFromDescription().AllowAnonymous().ShortCircuit();
    }

    static async Task Pixel(HttpContext http, string token, TrackingTargets targets, HitClassifier classifier,
        EventRecorder recorder, DeviceCookie device, IServiceScopeFactory scopes, TimeProvider clock, ILoggerFactory logs, bool record)
    {
        try
        {
            var t = token.EndsWith(".gif", StringComparison.OrdinalIgnoreCase) ? token[..^4] : token;
            if (Tokens.LooksLikeTrackingToken(t) && await targets.FindPixelAsync(t, http.RequestAborted) is { } target)
            {
                var now = clock.GetUtcNow();
                var hit = BaseContext(http, EventKind.Open, now, target, device);
                var proxy = UserAgentFacts.For(hit.UserAgent).Proxy;
                if (proxy != MailImageProxy.None)
                {
                    hit = hit with { EarlierProxyFetches = await CountEarlierProxyFetchesAsync(scopes, target, proxy) };
                }
                if (proxy == MailImageProxy.Gmail)
                {
                    hit = hit with { SenderViewedRecently = await SenderViewedSinceAsync(scopes, target, now - SenderView.After) };
                }
                var verdict = classifier.Classify(hit);
                var open = NewEvent(target, hit, verdict);
                if (record)
                {
                    await recorder.RecordAsync(open, CancellationToken.None).WaitAsync(RecordTimeout);
                    if (proxy != MailImageProxy.None && verdict.Verdict == Verdict.Human)
                    {
                        await KeepOnlyFirstProxyFetchAsync(scopes, http.RequestServices.GetRequiredService<VerdictCorrections>(), target, proxy);
                    }
                }
            }
        }
        catch (Exception ex)
        {
            // The image goes out whatever happened; the failure is logged, never shown.
            logs.CreateLogger("EmailTracking.Pixel").LogWarning(ex, "Pixel hit not recorded");
        }
        WriteTrackingHeaders(http.Response);
        http.Response.ContentType = "image/gif";
        http.Response.ContentLength = Gif.Length;
        if (!HttpMethods.IsHead(http.Request.Method)) await http.Response.Body.WriteAsync(Gif);
    }

    static async Task<IResult> Click(HttpContext http, string token, TrackingTargets targets, HitClassifier classifier,
        EventRecorder recorder, DeviceCookie device, IServiceScopeFactory scopes, TimeProvider clock, ILoggerFactory logs)
    {
        WriteTrackingHeaders(http.Response);
        TrackingTarget? target;
        try
        {
            target = Tokens.LooksLikeTrackingToken(token) ? await targets.FindLinkAsync(token, http.RequestAborted) : null;
        }
        catch (Exception ex)
        {
            logs.CreateLogger("EmailTracking.Click").LogError(ex, "Click token lookup failed");
            return Results.Content(Page("This link cannot be opened right now", "Please try again in a minute."), "text/html; charset=utf-8", statusCode: 503);
        }
        if (target is null)
        {
            return Results.Content(Page("Link not found", "This link is not known here. Nothing was opened."), "text/html; charset=utf-8", statusCode: 404);
        }

        try
        {
            var now = clock.GetUtcNow();
            var hit = BaseContext(http, EventKind.Click, now, target, device);
            if (!target.IsHoneypot)
            {
                hit = hit with { OtherLinksClickedTogether = await CountEarlierClicksOfOtherLinksAsync(scopes, target, hit, classifier.ClickBurstWindow) };
            }
            var verdict = classifier.Classify(hit);
            await recorder.RecordAsync(NewEvent(target, hit, verdict), CancellationToken.None).WaitAsync(RecordTimeout);
            var corrections = http.RequestServices.GetRequiredService<VerdictCorrections>();
            if (target.IsHoneypot) await MarkHoneypotBurstAsync(scopes, corrections, target, hit, classifier);
            else await MarkBurstAsync(scopes, corrections, target, hit, classifier);
        }
        catch (Exception ex)
        {
            // The reader still gets where they were going.
            logs.CreateLogger("EmailTracking.Click").LogWarning(ex, "Click not recorded");
        }

        if (target.IsHoneypot)
        {
            return Results.Content(Page("Nothing here", ""), "text/html; charset=utf-8");
        }
        return Results.Redirect(target.Url!, permanent: false);
    }

    /// <summary>The client's address as recorded (IPv4 when it came mapped into IPv6).</summary>
    internal static IPAddress? ClientIp(HttpContext http) =>
        http.Connection.RemoteIpAddress is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : http.Connection.RemoteIpAddress;

    /// <summary>
    /// The user agent as recorded: at most 1024 characters, and never cut between the two halves of a character beyond
    /// the BMP (an emoji in a UTF-8 user agent): PostgreSQL refuses such text, and with it the whole batch of events.
    /// </summary>
    internal static string? ClientUserAgent(HttpContext http)
    {
        string? ua = http.Request.Headers.UserAgent;
        return TextClip.PrefixOrNull(ua, 1024);
    }

    static HitContext BaseContext(HttpContext http, EventKind kind, DateTimeOffset now, TrackingTarget target, DeviceCookie device)
    {
        return new HitContext
        {
            Kind = kind,
            Method = http.Request.Method,
            Ip = ClientIp(http),
            UserAgent = ClientUserAgent(http),
            Now = now,
            SentAt = target.SentOrRegisteredAt,
            FromSenderDevice = device.Read(http.Request) == target.UserId,
            IsHoneypot = target.IsHoneypot,
        };
    }

    static TrackingEvent NewEvent(TrackingTarget target, HitContext hit, Classification.Classification verdict) => new()
    {
        TeamId = target.TeamId,
        UserId = target.UserId,
        TrackedMessageId = target.MessageId,
        CopyId = target.CopyId,
        RecipientId = target.RecipientId,
        LinkId = target.LinkId,
        Kind = hit.Kind,
        OccurredAt = hit.Now,
        Ip = hit.Ip?.ToString(),
        UserAgent = hit.UserAgent,
        Method = hit.Method,
        Verdict = verdict.Verdict,
        Reason = TextClip.Prefix(verdict.Reason, 300),
    };

    /// <summary>This copy's events of one kind: through the message's index, as a message has few events.</summary>
    static IQueryable<TrackingEvent> CopyEvents(AppDbContext db, TrackingTarget target, EventKind kind) =>
        db.Events.Where(e => e.TrackedMessageId == target.MessageId && e.CopyId == target.CopyId && e.Kind == kind);

    static async Task<T> WithDbAsync<T>(IServiceScopeFactory scopes, Func<AppDbContext, Task<T>> work)
    {
        await using var scope = scopes.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<AppDbContext>());
    }

    /// <summary>
    /// Opens of this copy through the same image proxy (ids in order) that were counted as the first open or its repeats
    /// (<c>human</c> or <c>proxy-prefetch</c>), human-looking ones only if asked.
    /// </summary>
    static Task<List<long>> ProxyFetchesAsync(IServiceScopeFactory scopes, TrackingTarget target, MailImageProxy proxy, bool humanOnly) =>
        WithDbAsync(scopes, async db =>
        {
            // Only fetches that were the open or its cache repeats come before the recipient's open. The sender's own
            // (self: their Gmail view of the sent mail), a HEAD through the proxy (bot) and a fetch from a scanner range
            // (scanner) were not the message being displayed: the recipient's first GET after them is their open, not a
            // repeat. (Neither verdict is ever given to a HEAD, so these are GETs.)
            var opens = CopyEvents(db, target, EventKind.Open).Where(e => e.UserAgent != null
                && (humanOnly ? e.Verdict == Verdict.Human : e.Verdict == Verdict.Human || e.Verdict == Verdict.ProxyPrefetch));
            // Narrowed to user agents naming the proxy before the first 200 are taken: taken from all the copy's opens, a
            // much-read copy's first 200 were other clients', its proxy fetches were never found, and every one of them
            // counted as a person's open. The rules below still decide.
            opens = NamingAny(opens, UserAgentRules.MailImageProxyMarkers(proxy));
            var rows = await opens.OrderBy(e => e.Id).Select(e => new { e.Id, e.UserAgent }).Take(200).ToListAsync();
            return rows.Where(r => UserAgentRules.DetectMailImageProxy(r.UserAgent) == proxy).Select(r => r.Id).ToList();
        });

    /// <summary>The events whose user agent, in lower case, holds one of the texts (all of them when none is given).</summary>
    static IQueryable<TrackingEvent> NamingAny(IQueryable<TrackingEvent> events, IReadOnlyList<string> texts)
    {
        var e = Expr.Parameter(typeof(TrackingEvent), "e");
        var ua = Expr.Call(Expr.Property(e, nameof(TrackingEvent.UserAgent)), typeof(string).GetMethod(nameof(string.ToLower), Type.EmptyTypes)!);
        var contains = typeof(string).GetMethod(nameof(string.Contains), [typeof(string)])!;
        var any = texts.Select(text => (Expr)Expr.Call(ua, contains, Expr.Constant(text))).Aggregate((Expr?)null, (a, b) => a is null ? b : Expr.OrElse(a, b));
        return any is null ? events : events.Where(Expr.Lambda<Func<TrackingEvent, bool>>(any, e));
    }

    static async Task<int> CountEarlierProxyFetchesAsync(IServiceScopeFactory scopes, TrackingTarget target, MailImageProxy proxy) =>
        (await ProxyFetchesAsync(scopes, target, proxy, humanOnly: false)).Count;

    /// <summary>
    /// Two fetches through the same image proxy that arrive together each saw no earlier one. Once committed, only the
    /// first stays a human open; the others are the proxy's repeats.
    /// </summary>
    static async Task KeepOnlyFirstProxyFetchAsync(IServiceScopeFactory scopes, VerdictCorrections corrections, TrackingTarget target, MailImageProxy proxy)
    {
        var repeats = (await ProxyFetchesAsync(scopes, target, proxy, humanOnly: true)).Skip(1).ToList();
        if (repeats.Count == 0) return;
        await corrections.RemarkAsync(db => db.Events.Where(e => repeats.Contains(e.Id)), Verdict.ProxyPrefetch,
            "repeat fetch through the mail image proxy: a cache effect");
    }

    static Task<bool> SenderViewedSinceAsync(IServiceScopeFactory scopes, TrackingTarget target, DateTimeOffset since) =>
        WithDbAsync(scopes, db => db.Messages.AnyAsync(m => m.Id == target.MessageId && m.SenderViewedAt != null && m.SenderViewedAt >= since));

    /// <summary>
    /// The clicks of this copy a burst of this click is looked for among. A copy that went to one person: all of them. A
    /// shared copy (one body for every recipient): only those from the same client, the same address and user agent, as
    /// this one. A scanner walks a message from one client, while two recipients who click two links of the shared body
    /// in the same second are two clients, two people each clicking once.
    /// </summary>
    static IQueryable<TrackingEvent> BurstCandidates(AppDbContext db, TrackingTarget target, HitContext hit)
    {
        var clicks = CopyEvents(db, target, EventKind.Click);
        if (target.RecipientId is not null) return clicks;
        var (ip, userAgent) = (hit.Ip?.ToString(), hit.UserAgent);
        return clicks.Where(e => e.Ip == ip && e.UserAgent == userAgent);
    }

    /// <summary>Clicks on other links of the same copy (<see cref="BurstCandidates"/>) within the burst window before this one.</summary>
    static Task<int> CountEarlierClicksOfOtherLinksAsync(IServiceScopeFactory scopes, TrackingTarget target, HitContext hit, TimeSpan window)
    {
        var since = hit.Now - window;
        return WithDbAsync(scopes, db => BurstCandidates(db, target, hit)
            .Where(e => e.LinkId != target.LinkId && e.OccurredAt >= since)
            .Select(e => e.LinkId).Distinct().CountAsync());
    }

    /// <summary>
    /// Once this click is committed, looks again: clicks that arrived together (a scanner fetching every link at once)
    /// could not see each other before. When different links of the copy were clicked within the burst window of this
    /// one (<see cref="BurstCandidates"/>), every human-looking click among them was one machine.
    /// </summary>
    static async Task MarkBurstAsync(IServiceScopeFactory scopes, VerdictCorrections corrections, TrackingTarget target, HitContext hit,
        HitClassifier classifier)
    {
        var window = classifier.ClickBurstWindow;
        var (from, to) = (hit.Now - window, hit.Now + window);
        IQueryable<TrackingEvent> Window(AppDbContext db) =>
            BurstCandidates(db, target, hit).Where(e => e.OccurredAt >= from && e.OccurredAt <= to);
        if (await WithDbAsync(scopes, db => Window(db).Select(e => e.LinkId).Distinct().CountAsync()) < 2) return;
        await corrections.RemarkAsync(Window, Verdict.Scanner, classifier.BurstReason);
    }

    /// <summary>
    /// A click on the hidden honeypot link is a machine following every link, and so are the clicks of the copy
    /// (<see cref="BurstCandidates"/>: of a shared copy, the same client's only) within the burst window of it. A scanner
    /// walking the body in document order reaches the honeypot, last in the body, after the visible links: those were
    /// recorded as a person's before the honeypot gave the scanner away. Only the rare honeypot click pays for this.
    /// </summary>
    static Task MarkHoneypotBurstAsync(IServiceScopeFactory scopes, VerdictCorrections corrections, TrackingTarget target, HitContext hit,
        HitClassifier classifier)
    {
        var window = classifier.ClickBurstWindow;
        var (from, to) = (hit.Now - window, hit.Now + window);
        return corrections.RemarkAsync(db => BurstCandidates(db, target, hit).Where(e => e.OccurredAt >= from && e.OccurredAt <= to),
            Verdict.Scanner, classifier.HoneypotBurstReason);
    }

    /// <summary>
    /// What the tracking answers (an image, a redirect, a two-line page with no script, style or image) need of a
    /// browser's policy: nothing at all. These endpoints skip the rest of the middleware (see <see cref="MapTracking"/>),
    /// <see cref="Web.SecurityHeaders"/> among it, so they set their own headers.
    /// </summary>
    internal const string Csp = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    /// <summary>Every tracking answer's headers: never cached, indexed or framed, and the strict policy above.</summary>
    static void WriteTrackingHeaders(HttpResponse response)
    {
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.ContentSecurityPolicy = Csp;
        response.Headers.XFrameOptions = "DENY";
        response.Headers.CacheControl = "no-store, no-cache, must-revalidate, max-age=0";
        response.Headers.Pragma = "no-cache";
        response.Headers.Expires = "0";
        response.Headers["X-Robots-Tag"] = "noindex, nofollow";
        response.Headers["Referrer-Policy"] = "no-referrer";
    }

    internal static string Page(string title, string text) =>
        $"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{WebUtility.HtmlEncode(title)}</title></head>" +
        $"<body><h1>{WebUtility.HtmlEncode(title)}</h1><p>{WebUtility.HtmlEncode(text)}</p></body></html>";
}
