using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Tracking.Classification;
using EmailTracking.Server.Web;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Content;

/// <summary>
/// What a recipient reaches through a tracked document link: the viewer page, the PDF (with HTTP Range, so the first
/// page draws before the file has arrived), the download, and the visit with its heartbeats. Every request is given
/// the foundation's verdict (bot, scanner, sender's own device); the sender's own views are never recorded.
/// </summary>
public static class ViewerApi
{
    /// <summary>The viewer runs our script only, talks to us only, and cannot be framed.</summary>
    public const string Csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
                              "worker-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    /// <summary>For the viewer's script, worker and data files.</summary>
    public const string AssetCsp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data: blob:; " +
                                   "style-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

    /// <summary>Largest heartbeat body: cumulative times of a few hundred pages fit many times over.</summary>
    const int MaxBeatBytes = 16 * 1024;

    public sealed record VisitResponse(Guid? VisitId, string Name, int PageCount, bool AllowDownload, string FileUrl, string? DownloadUrl, bool Preview);

    public sealed class BeatRequest
    {
        public Dictionary<string, long>? Pages { get; set; }
        public List<int>? Order { get; set; }
        public int? Current { get; set; }
    }

    /// <summary>POST /d/{token}/visits/{visitId}/links: the reader followed a link inside the document.</summary>
    public sealed class LinkRequest
    {
        public string? Url { get; set; }
        public int? Page { get; set; }
    }

    /// <summary>Longest address recorded for a followed link (longer ones are refused, not cut).</summary>
    public const int MaxLinkUrl = 2000;

    /// <summary>The same link followed again by the same recipient within this counts once (a beacon and its retry, a double click).</summary>
    static readonly TimeSpan LinkRepeat = TimeSpan.FromSeconds(10);

    /// <summary>
    /// At most this many followed links per recipient and document in an hour (through a share link outside any
    /// message, per client address): the reports come from the reader's browser, and a hostile one must not fill the
    /// sender's feed.
    /// </summary>
    public const int MaxLinksPerHour = 60;

    sealed record Target(ContentLink Link, ContentItem Content, DateTimeOffset? SentAt);

    public static void MapViewer(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/d").ExcludeFromDescription().AllowAnonymous();
        g.MapMethods("/{token}", [HttpMethods.Get, HttpMethods.Head], Page);
        g.MapPost("/{token}/visits", StartVisit);
        g.MapPost("/{token}/visits/{visitId:guid}/beats", Beat);
        g.MapPost("/{token}/visits/{visitId:guid}/links", FollowedLink);
        g.MapMethods("/{token}/file", [HttpMethods.Get, HttpMethods.Head], File);
        g.MapGet("/{token}/download", Download);
    }

    static async Task<Target?> FindAsync(AppDbContext db, string token, CancellationToken ct)
    {
        if (!Tokens.LooksLikeTrackingToken(token)) return null;
        var row = await db.ContentLinks.AsNoTracking().Where(l => l.Token == token)
            .Select(l => new { Link = l, l.Content, Message = db.Messages.Where(m => m.Id == l.TrackedMessageId).Select(m => new { m.SentAt, m.CreatedAt }).FirstOrDefault() })
            .FirstOrDefaultAsync(ct);
        if (row?.Content is null) return null;
        return new Target(row.Link, row.Content, row.Message is null ? null : row.Message.SentAt ?? row.Message.CreatedAt);
    }

    static IResult Message(int status, string title, string text) =>
        Results.Content(Tracking.TrackingApi.Page(title, text), "text/html; charset=utf-8", statusCode: status);

    static IResult ProblemJson(int status, string title, string detail) =>
        Results.Problem(statusCode: status, title: title, detail: detail);

    static HitContext Hit(HttpContext http, Target t, DeviceCookie device, TimeProvider clock)
    {
        return new HitContext
        {
            // Opening a document link is a click as far as the machine rules go (scanners follow links on delivery).
            Kind = EventKind.Click,
            Method = http.Request.Method,
            Ip = TrackingApi.ClientIp(http),
            UserAgent = TrackingApi.ClientUserAgent(http),
            Now = clock.GetUtcNow(),
            SentAt = t.SentAt ?? t.Link.CreatedAt,
            FromSenderDevice = device.Read(http.Request) is { } user && (user == t.Link.UserId || user == t.Content.UserId),
        };
    }

    static TrackingEvent Event(Target t, HitContext hit, Tracking.Classification.Classification verdict, EventKind kind, int? page = null) => new()
    {
        TeamId = t.Link.TeamId,
        UserId = t.Link.UserId,
        // Null for a share link outside any message: its reads reach the owner's feed all the same.
        TrackedMessageId = t.Link.TrackedMessageId,
        CopyId = t.Link.CopyId,
        RecipientId = t.Link.RecipientId,
        Kind = kind,
        OccurredAt = hit.Now,
        Ip = hit.Ip?.ToString(),
        UserAgent = hit.UserAgent,
        Method = hit.Method,
        Verdict = verdict.Verdict,
        Reason = verdict.Reason.Length > 300 ? verdict.Reason[..300] : verdict.Reason,
        ContentId = t.Content.Id,
        Page = page,
    };

    static async Task<IResult> Page(string token, HttpContext http, AppDbContext db, HitClassifier classifier, EventRecorder recorder,
        DeviceCookie device, TimeProvider clock, IWebHostEnvironment env, ILoggerFactory logs, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Robots-Tag"] = "noindex, nofollow";
        var t = await FindAsync(db, token, ct);
        if (t is null) return Message(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null) return Message(410, "Document removed", "The sender has removed this document.");

        // The page fetch is what link previewers and scanners do: it is recorded with their verdict, for a link in a
        // tracked message as for a share link pasted anywhere (a chat's previewer, a mail sent untracked); the sender's
        // own device is not recorded at all.
        var hit = Hit(http, t, device, clock);
        var verdict = classifier.Classify(hit);
        if (verdict.Verdict != Verdict.Self)
        {
            try { await recorder.RecordAsync(Event(t, hit, verdict, EventKind.DocumentView), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), ct); }
            catch (Exception e) when (e is not OperationCanceledException) { logs.CreateLogger("EmailTracking.Viewer").LogWarning(e, "Document view not recorded"); }
        }
        if (HttpMethods.IsHead(http.Request.Method)) return Results.Ok();
        var page = env.WebRootFileProvider.GetFileInfo("viewer/index.html");
        if (!page.Exists)
        {
            return Message(503, "The viewer is not built",
                "The server was built without its document viewer. Build it with `npm ci && npm run build` in web-taskpane/.");
        }
        return Results.Stream(page.CreateReadStream(), "text/html; charset=utf-8");
    }

    static async Task<IResult> StartVisit(string token, HttpContext http, AppDbContext db, HitClassifier classifier,
        DeviceCookie device, TimeProvider clock, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null) return ProblemJson(410, "Document removed", "The sender has removed this document.");
        var fileUrl = $"/d/{token}/file";
        // The visit is the viewer page's script speaking for the page it loaded with a GET: judge it as that page
        // request (a POST would otherwise read as a link checker's probe).
        var hit = Hit(http, t, device, clock) with { Method = HttpMethods.Get };
        var verdict = classifier.Classify(hit);
        if (verdict.Verdict == Verdict.Self)
        {
            return Results.Ok(new VisitResponse(null, t.Content.Name, t.Content.PageCount, t.Content.AllowDownload, fileUrl,
                t.Content.AllowDownload ? $"/d/{token}/download" : null, Preview: true));
        }
        var visit = new DocumentVisit
        {
            ContentLinkId = t.Link.Id,
            ContentId = t.Content.Id,
            TeamId = t.Link.TeamId,
            UserId = t.Link.UserId,
            TrackedMessageId = t.Link.TrackedMessageId,
            RecipientId = t.Link.RecipientId,
            StartedAt = hit.Now,
            LastSeenAt = hit.Now,
            Ip = hit.Ip?.ToString(),
            UserAgent = hit.UserAgent,
            Verdict = verdict.Verdict,
            Reason = verdict.Reason.Length > 300 ? verdict.Reason[..300] : verdict.Reason,
        };
        db.DocumentVisits.Add(visit);
        await db.SaveChangesAsync(ct);
        return Results.Ok(new VisitResponse(visit.Id, t.Content.Name, t.Content.PageCount, t.Content.AllowDownload, fileUrl,
            t.Content.AllowDownload ? $"/d/{token}/download?visit={visit.Id}" : null, Preview: false));
    }

    /// <summary>
    /// A heartbeat carries the visit's cumulative active time per page, so a retried or late beat changes nothing:
    /// each page keeps the larger figure. No page may claim more time than has passed since the visit began.
    /// </summary>
    static async Task<IResult> Beat(string token, Guid visitId, HttpContext http, AppDbContext db, EventRecorder recorder,
        TimeProvider clock, ILoggerFactory logs, CancellationToken ct)
    {
        var (beat, refused) = await ReadJsonAsync<BeatRequest>(http, MaxBeatBytes, "Heartbeat",
            "The body must be JSON: {\"pages\": {\"1\": 1200}, \"order\": [1], \"current\": 1}.", ct);
        if (refused is not null) return refused;
        if (beat?.Pages is null) return ProblemJson(400, "Malformed heartbeat", "'pages' is required.");

        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        var now = clock.GetUtcNow();
        for (var attempt = 0; ; attempt++)
        {
            var visit = await db.DocumentVisits.Include(v => v.Pages).FirstOrDefaultAsync(v => v.Id == visitId && v.ContentLinkId == t.Link.Id, ct);
            if (visit is null) return ProblemJson(404, "Visit not found", "Start a visit first (POST /d/{token}/visits).");
            var elapsed = (long)(now - visit.StartedAt).TotalMilliseconds + 5_000;
            var newPages = new List<int>();
            var order = beat.Order ?? [];
            foreach (var (key, ms) in beat.Pages)
            {
                if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var page) ||
                    page < 1 || page > t.Content.PageCount || ms < 0)
                {
                    return ProblemJson(400, "Malformed heartbeat", $"'{Truncate(key)}' is not a page of this document (1–{t.Content.PageCount}) with a time of 0 or more.");
                }
                var capped = Math.Min(ms, elapsed);
                var row = visit.Pages.FirstOrDefault(p => p.Page == page);
                if (row is null)
                {
                    var position = order.IndexOf(page);
                    row = new DocumentPageTime
                    {
                        VisitId = visit.Id, Page = page, ActiveMs = capped, FirstSeenAt = now,
                        Order = position >= 0 ? position : visit.Pages.Count,
                    };
                    visit.Pages.Add(row);
                    newPages.Add(page);
                }
                else if (capped > row.ActiveMs)
                {
                    row.ActiveMs = capped;
                }
            }
            // Together the pages cannot exceed the visit's length either.
            var sum = visit.Pages.Sum(p => p.ActiveMs);
            visit.ActiveMs = Math.Min(sum, elapsed);
            visit.MaxPage = visit.Pages.Count == 0 ? 0 : visit.Pages.Max(p => p.Page);
            visit.LastSeenAt = now;
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException) when (attempt < 2)
            {
                // A beacon and its retry raced to add the same page: read again and merge.
                db.ChangeTracker.Clear();
                continue;
            }
            if (newPages.Count > 0)
            {
                // "alan@encom.com is reading Proposal.pdf — page 3 of 12" in the live feed: one event per page reached.
                var verdict = new Tracking.Classification.Classification(visit.Verdict, visit.Reason);
                var hit = new HitContext { Kind = EventKind.Click, Method = "POST", Now = now, UserAgent = visit.UserAgent,
                    Ip = IPAddress.TryParse(visit.Ip, out var ip) ? ip : null };
                // Every page reached gets its event, in the order the reader reached them (a beat sent on a quick page
                // turn carries two new pages at once).
                var reached = visit.Pages.Where(p => newPages.Contains(p.Page)).OrderBy(p => p.Order).Select(p => p.Page).ToList();
                try
                {
                    await Task.WhenAll(reached.Select(page => recorder.RecordAsync(Event(t, hit, verdict, EventKind.DocumentPage, page), CancellationToken.None)))
                        .WaitAsync(TimeSpan.FromSeconds(10), ct);
                }
                catch (Exception e) when (e is not OperationCanceledException) { logs.CreateLogger("EmailTracking.Viewer").LogWarning(e, "Page event not recorded"); }
            }
            return Results.NoContent();
        }
    }

    /// <summary>A small JSON body, read with a limit on its size (the viewer's beacons: no sign-in, so anyone can send them).</summary>
    static async Task<(T? Value, IResult? Refused)> ReadJsonAsync<T>(HttpContext http, int max, string what, string shape, CancellationToken ct)
    {
        if (http.Request.ContentLength > max) return (default, ProblemJson(413, $"{what} too large", $"At most {max} bytes."));
        try
        {
            using var limited = new MemoryStream();
            var buffer = new byte[4096];
            int n;
            while ((n = await http.Request.Body.ReadAsync(buffer, ct)) > 0)
            {
                if (limited.Length + n > max) return (default, ProblemJson(413, $"{what} too large", $"At most {max} bytes."));
                limited.Write(buffer, 0, n);
            }
            limited.Position = 0;
            return (await JsonSerializer.DeserializeAsync<T>(limited, JsonSerializerOptions.Web, ct), null);
        }
        catch (JsonException)
        {
            return (default, ProblemJson(400, $"Malformed {what.ToLowerInvariant()}", shape));
        }
    }

    /// <summary>
    /// The reader followed a web or mail link inside the document (the viewer sends a beacon as the link opens): one
    /// event, with the address and the page, judged as the visit was (the sender's own preview sends none).
    /// </summary>
    static async Task<IResult> FollowedLink(string token, Guid visitId, HttpContext http, AppDbContext db, EventRecorder recorder,
        TimeProvider clock, ILoggerFactory logs, CancellationToken ct)
    {
        const string Shape = "The body must be JSON: {\"url\": \"https://…\", \"page\": 1}.";
        var (request, refused) = await ReadJsonAsync<LinkRequest>(http, 4096, "Link", Shape, ct);
        if (refused is not null) return refused;
        var url = request?.Url?.Trim();
        if (string.IsNullOrEmpty(url) || url.Length > MaxLinkUrl || !Uri.TryCreate(url, UriKind.Absolute, out var address)
            || !(address.Scheme == Uri.UriSchemeHttp || address.Scheme == Uri.UriSchemeHttps || address.Scheme == Uri.UriSchemeMailto))
        {
            return ProblemJson(400, "Malformed link", $"'url' must be an http, https or mailto address of at most {MaxLinkUrl} characters.");
        }
        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        if (request!.Page is not { } page || page < 1 || page > t.Content.PageCount)
            return ProblemJson(400, "Malformed link", $"'page' must be a page of this document (1–{t.Content.PageCount}).");
        var visit = await db.DocumentVisits.AsNoTracking().FirstOrDefaultAsync(v => v.Id == visitId && v.ContentLinkId == t.Link.Id, ct);
        if (visit is null) return ProblemJson(404, "Visit not found", "Start a visit first (POST /d/{token}/visits).");
        var now = clock.GetUtcNow();
        var since = now - LinkRepeat;
        var hourAgo = now.AddHours(-1);
        // A reader is a recipient of a message's copy; through a share link outside any message, whose readers are not
        // told apart, a reader is an address (the visit's, which the beacons come from).
        var recent = t.Link.TrackedMessageId is { } messageId
            ? db.Events.Where(e => e.TrackedMessageId == messageId && e.Kind == EventKind.DocumentLink && e.ContentId == t.Content.Id
                && e.RecipientId == t.Link.RecipientId && e.OccurredAt >= hourAgo)
            : db.Events.Where(e => e.TrackedMessageId == null && e.ContentId == t.Content.Id && e.Kind == EventKind.DocumentLink
                && e.Ip == visit.Ip && e.OccurredAt >= hourAgo);
        if (await recent.AnyAsync(e => e.Url == url && e.Page == page && e.OccurredAt >= since, ct)) return Results.NoContent();
        if (await recent.CountAsync(ct) >= MaxLinksPerHour)
        {
            return Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many links",
                detail: $"At most {MaxLinksPerHour} followed links per reader and document in an hour are recorded.");
        }
        var hit = new HitContext { Kind = EventKind.Click, Method = "POST", Now = now, UserAgent = visit.UserAgent,
            Ip = IPAddress.TryParse(visit.Ip, out var ip) ? ip : null };
        var e = Event(t, hit, new Tracking.Classification.Classification(visit.Verdict, visit.Reason), EventKind.DocumentLink, page);
        e.Url = url;
        try { await recorder.RecordAsync(e, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), ct); }
        catch (Exception ex) when (ex is not OperationCanceledException) { logs.CreateLogger("EmailTracking.Viewer").LogWarning(ex, "Link event not recorded"); }
        return Results.NoContent();
    }

    static string Truncate(string s) => TextClip.Shorten(s, 21);

    static async Task<IResult> File(string token, HttpContext http, AppDbContext db, ContentStore store, CancellationToken ct)
    {
        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null || !store.Exists(t.Content.PdfSha256)) return ProblemJson(410, "Document removed", "The sender has removed this document.");
        http.Response.Headers.CacheControl = "private, max-age=3600";
        return Results.File(store.ObjectPath(t.Content.PdfSha256), "application/pdf", enableRangeProcessing: true,
            entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{t.Content.PdfSha256}\""));
    }

    static async Task<IResult> Download(string token, Guid? visit, HttpContext http, AppDbContext db, ContentStore store, HitClassifier classifier,
        EventRecorder recorder, DeviceCookie device, TimeProvider clock, ILoggerFactory logs, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        var t = await FindAsync(db, token, ct);
        if (t is null) return Message(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null || !store.Exists(t.Content.OriginalSha256)) return Message(410, "Document removed", "The sender has removed this document.");
        if (!t.Content.AllowDownload) return Message(403, "Downloads are turned off", "The sender shares this document for reading only.");

        var hit = Hit(http, t, device, clock);
        var verdict = classifier.Classify(hit);
        if (verdict.Verdict != Verdict.Self)
        {
            if (visit is { } id && await db.DocumentVisits.FirstOrDefaultAsync(v => v.Id == id && v.ContentLinkId == t.Link.Id, ct) is { } v)
            {
                v.Downloads++;
                v.LastSeenAt = hit.Now;
                await db.SaveChangesAsync(ct);
            }
            try { await recorder.RecordAsync(Event(t, hit, verdict, EventKind.Download), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), ct); }
            catch (Exception e) when (e is not OperationCanceledException) { logs.CreateLogger("EmailTracking.Viewer").LogWarning(e, "Download not recorded"); }
        }
        return Results.File(store.ObjectPath(t.Content.OriginalSha256), ContentSniffer.MediaType(t.Content.FileType), t.Content.Name);
    }
}
