using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Tracking.Classification;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Antiforgery;
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

    /// <summary>The page that asks a share link's reader for their address: no script at all, and its forms post to us.</summary>
    public const string GateCsp = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    /// <summary>Set in a response's items when it is the gate's page (its policy lets its forms post).</summary>
    public const string GatePageItem = "EmailTracking.ShareLinkGatePage";

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

    /// <param name="SharedFrom">For a recipient's link made from a share link, that share link (its expiry, off switch and download choice hold here too).</param>
    sealed record Target(ContentLink Link, ContentItem Content, DateTimeOffset? SentAt, ContentLink? SharedFrom)
    {
        /// <summary>
        /// The download button: the link's own choice, else (for a recipient's link made from a share link) the share
        /// link's as it stands now, so its owner can still close downloads after the message went out; else the document's.
        /// </summary>
        public bool AllowDownload => Link.AllowDownload ?? SharedFrom?.AllowDownload ?? Content.AllowDownload;
    }

    /// <summary>
    /// Why a 410 is gone, in its problem's "reason": the viewer's script reads it to tell a document its sender removed
    /// from a link that was turned off or ran out while the viewer was open (titles are words for people, not a contract).
    /// </summary>
    public static class GoneReason
    {
        public const string Removed = "removed";
        public const string TurnedOff = "turned-off";
        public const string Expired = "expired";
    }

    /// <summary>Why a share link shows nothing any more (its owner turned it off, or its time is up); null while it works.</summary>
    static (string Title, string Text, string Reason)? Closed(ContentLink link, DateTimeOffset now) =>
        link.DisabledAt is not null ? ("This link has been turned off", "This link has been turned off — ask the sender for a new one.", GoneReason.TurnedOff)
        : link.ExpiresAt is { } end && end <= now ? ("This link has expired", "This link has expired — ask the sender for a new one.", GoneReason.Expired)
        : null;

    /// <summary>The link's own state, then (for a recipient's link made from a share link) the share link's.</summary>
    static (string Title, string Text, string Reason)? Closed(Target t, DateTimeOffset now) =>
        Closed(t.Link, now) ?? (t.SharedFrom is { } share ? Closed(share, now) : null);

    static IResult GoneJson(string title, string detail, string reason) =>
        Results.Problem(statusCode: StatusCodes.Status410Gone, title: title, detail: detail, extensions: new Dictionary<string, object?> { ["reason"] = reason });

    static IResult RemovedJson() => GoneJson("Document removed", "The sender has removed this document.", GoneReason.Removed);

    /// <summary>
    /// The 410 a viewer's JSON call gets when the document was removed, or the link turned off or ran out; null while it
    /// can be read. A visit, a heartbeat and a followed link's report all ask this, so that nothing is recorded for a
    /// document after its sender removed it.
    /// </summary>
    static IResult? GoneJson(Target t, DateTimeOffset now) =>
        t.Content.DeletedAt is not null ? RemovedJson()
        : Closed(t, now) is { } closed ? GoneJson(closed.Title, closed.Text, closed.Reason)
        : null;

    public static void MapViewer(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/d").ExcludeFromDescription().AllowAnonymous();
        g.MapMethods("/{token}", [HttpMethods.Get, HttpMethods.Head], Page);
        g.MapPost("/{token}/visits", StartVisit);
        g.MapPost("/{token}/visits/{visitId:guid}/beats", Beat);
        g.MapPost("/{token}/visits/{visitId:guid}/links", FollowedLink);
        g.MapMethods("/{token}/file", [HttpMethods.Get, HttpMethods.Head], File);
        g.MapGet("/{token}/download", Download);
        // Their antiforgery token is checked by the handlers themselves (OwnFormAsync), after the link is found: an unknown,
        // removed or closed link answers as the page does, and a refused token gets the gate's own page.
        g.MapPost("/{token}/reader", GiveEmail).DisableAntiforgery();
        g.MapPost("/{token}/code", GiveCode).DisableAntiforgery();
    }

    static async Task<Target?> FindAsync(AppDbContext db, string token, CancellationToken ct)
    {
        if (!Tokens.LooksLikeTrackingToken(token)) return null;
        var row = await db.ContentLinks.AsNoTracking().Where(l => l.Token == token)
            .Select(l => new
            {
                Link = l, l.Content,
                Message = db.Messages.Where(m => m.Id == l.TrackedMessageId).Select(m => new { m.SentAt, m.CreatedAt }).FirstOrDefault(),
                SharedFrom = db.ContentLinks.FirstOrDefault(s => s.Id == l.SharedFromId),
            })
            .FirstOrDefaultAsync(ct);
        if (row?.Content is null) return null;
        return new Target(row.Link, row.Content, row.Message is null ? null : row.Message.SentAt ?? row.Message.CreatedAt, row.SharedFrom);
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

    static TrackingEvent Event(Target t, HitContext hit, Tracking.Classification.Classification verdict, EventKind kind, ShareReader? reader,
        int? page = null) => new()
    {
        ReaderEmail = reader?.Email,
        ReaderVerified = reader?.Verified ?? false,
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
        DeviceCookie device, ShareLinkGate gate, TimeProvider clock, IWebHostEnvironment env, ILoggerFactory logs, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Robots-Tag"] = "noindex, nofollow";
        var t = await FindAsync(db, token, ct);
        if (t is null) return Message(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null) return Message(410, "Document removed", "The sender has removed this document.");
        if (Closed(t, clock.GetUtcNow()) is { } closed) return Message(410, closed.Title, closed.Text);

        // The page fetch is what link previewers and scanners do: it is recorded with their verdict, for a link in a
        // tracked message as for a share link pasted anywhere (a chat's previewer, a mail sent untracked); the sender's
        // own device is not recorded at all.
        var hit = Hit(http, t, device, clock);
        ShareReader? reader = null;
        if (t.Link.EmailGate != ReaderEmailGate.None && !hit.FromSenderDevice)
        {
            // A reader not named yet gets the form that asks, and nothing is recorded: a scanner or a link previewer
            // fetching the link sees the form only, and has read nothing.
            reader = gate.Reader(http.Request, t.Link);
            if (reader is null) return GatePage(http, token, t, gate.PendingEmail(http.Request, t.Link), 200, null);
        }
        var verdict = classifier.Classify(hit);
        if (verdict.Verdict != Verdict.Self)
        {
            try { await recorder.RecordAsync(Event(t, hit, verdict, EventKind.DocumentView, reader), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), ct); }
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
        DeviceCookie device, ShareLinkGate gate, TimeProvider clock, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        if (GoneJson(t, clock.GetUtcNow()) is { } gone) return gone;
        var fileUrl = $"/d/{token}/file";
        // The visit is the viewer page's script speaking for the page it loaded with a GET: judge it as that page
        // request (a POST would otherwise read as a link checker's probe).
        var hit = Hit(http, t, device, clock) with { Method = HttpMethods.Get };
        var verdict = classifier.Classify(hit);
        if (verdict.Verdict == Verdict.Self)
        {
            return Results.Ok(new VisitResponse(null, t.Content.Name, t.Content.PageCount, t.AllowDownload, fileUrl,
                t.AllowDownload ? $"/d/{token}/download" : null, Preview: true));
        }
        ShareReader? reader = null;
        if (t.Link.EmailGate != ReaderEmailGate.None && (reader = gate.Reader(http.Request, t.Link)) is null) return GateRefused(token);
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
            ReaderEmail = reader?.Email,
            ReaderVerified = reader?.Verified ?? false,
        };
        db.DocumentVisits.Add(visit);
        await db.SaveChangesAsync(ct);
        return Results.Ok(new VisitResponse(visit.Id, t.Content.Name, t.Content.PageCount, t.AllowDownload, fileUrl,
            t.AllowDownload ? $"/d/{token}/download?visit={visit.Id}" : null, Preview: false));
    }

    /// <summary>
    /// A heartbeat carries the visit's cumulative active time per page, so a retried or late beat changes nothing:
    /// each page keeps the larger figure. No page, and no pages together, may claim more time than has passed since the
    /// visit began.
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
        // A removed document records no more reading, as a turned-off or expired link does not: the viewer still open
        // on it is told so by its next heartbeat.
        if (GoneJson(t, now) is { } gone) return gone;
        for (var attempt = 0; ; attempt++)
        {
            var visit = await db.DocumentVisits.Include(v => v.Pages).FirstOrDefaultAsync(v => v.Id == visitId && v.ContentLinkId == t.Link.Id, ct);
            if (visit is null) return ProblemJson(404, "Visit not found", "Start a visit first (POST /d/{token}/visits).");
            // The visit's length by this server's clock, with some slack for the beat's way here; never below nothing,
            // should the clock have stepped back or the visit have been started by an instance whose clock runs ahead.
            var elapsed = Math.Max(0, (long)(now - visit.StartedAt).TotalMilliseconds + 5_000);
            var claimed = new Dictionary<int, long>();
            foreach (var (key, ms) in beat.Pages)
            {
                if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var page) ||
                    page < 1 || page > t.Content.PageCount || ms < 0)
                {
                    return ProblemJson(400, "Malformed heartbeat", $"'{Truncate(key)}' is not a page of this document (1–{t.Content.PageCount}) with a time of 0 or more.");
                }
                // "1" and "01" name the same page: the larger figure stands.
                claimed[page] = Math.Max(claimed.GetValueOrDefault(page), Math.Min(ms, elapsed));
            }
            // Together the pages cannot exceed the visit's length either: what the beat adds shares what is left of it,
            // each page in proportion to what it claimed (an honest viewer never claims more; a replayed or crafted
            // beacon could otherwise give every page the whole visit). No page ever loses time it had.
            var rows = visit.Pages.ToDictionary(p => p.Page);
            var raises = claimed.ToDictionary(c => c.Key, c => Math.Max(0, c.Value - (rows.TryGetValue(c.Key, out var r) ? r.ActiveMs : 0)));
            var room = Math.Max(0, elapsed - visit.Pages.Sum(p => p.ActiveMs));
            var raised = raises.Values.Sum();
            var share = raised > room ? (double)room / raised : 1;
            var newPages = new List<int>();
            var order = beat.Order ?? [];
            foreach (var (page, raise) in raises)
            {
                var add = (long)Math.Floor(raise * share);
                if (rows.TryGetValue(page, out var row))
                {
                    row.ActiveMs += add;
                    continue;
                }
                var position = order.IndexOf(page);
                visit.Pages.Add(new DocumentPageTime
                {
                    VisitId = visit.Id, Page = page, ActiveMs = add, FirstSeenAt = now,
                    Order = position >= 0 ? position : visit.Pages.Count,
                });
                newPages.Add(page);
            }
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
                    await Task.WhenAll(reached.Select(page => recorder.RecordAsync(Event(t, hit, verdict, EventKind.DocumentPage, Reader(visit), page), CancellationToken.None)))
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
        // No control characters: a URL has them percent-encoded, and a NUL failed the query and the insert on PostgreSQL.
        if (string.IsNullOrEmpty(url) || url.Length > MaxLinkUrl || PlainText.HasControl(url) || !Uri.TryCreate(url, UriKind.Absolute, out var address)
            || !(address.Scheme == Uri.UriSchemeHttp || address.Scheme == Uri.UriSchemeHttps || address.Scheme == Uri.UriSchemeMailto))
        {
            return ProblemJson(400, "Malformed link", $"'url' must be an http, https or mailto address of at most {MaxLinkUrl} characters, without control characters.");
        }
        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        var now = clock.GetUtcNow();
        if (GoneJson(t, now) is { } gone) return gone;
        if (request!.Page is not { } page || page < 1 || page > t.Content.PageCount)
            return ProblemJson(400, "Malformed link", $"'page' must be a page of this document (1–{t.Content.PageCount}).");
        var visit = await db.DocumentVisits.AsNoTracking().FirstOrDefaultAsync(v => v.Id == visitId && v.ContentLinkId == t.Link.Id, ct);
        if (visit is null) return ProblemJson(404, "Visit not found", "Start a visit first (POST /d/{token}/visits).");
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
        var e = Event(t, hit, new Tracking.Classification.Classification(visit.Verdict, visit.Reason), EventKind.DocumentLink, Reader(visit), page);
        e.Url = url;
        try { await recorder.RecordAsync(e, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), ct); }
        catch (Exception ex) when (ex is not OperationCanceledException) { logs.CreateLogger("EmailTracking.Viewer").LogWarning(ex, "Link event not recorded"); }
        return Results.NoContent();
    }

    static string Truncate(string s) => TextClip.Shorten(s, 21);

    static async Task<IResult> File(string token, HttpContext http, AppDbContext db, ContentStore store, DeviceCookie device, ShareLinkGate gate,
        TimeProvider clock, CancellationToken ct)
    {
        var t = await FindAsync(db, token, ct);
        if (t is null) return ProblemJson(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null || !store.Exists(t.Content.PdfSha256)) return RemovedJson();
        if (Closed(t, clock.GetUtcNow()) is { } closed) return GoneJson(closed.Title, closed.Text, closed.Reason);
        // The file's address is the link's and a word: behind a gate it is the gate's as much as the page is.
        if (t.Link.EmailGate != ReaderEmailGate.None && gate.Reader(http.Request, t.Link) is null && !FromSender(http, t, device)) return GateRefused(token);
        // Never kept by the browser: a copy it could reuse without asking would still be shown after the sender removed
        // the document or the link was turned off or ran out (the viewer's own range requests ask afresh anyway).
        http.Response.Headers.CacheControl = "no-store";
        return Results.File(store.ObjectPath(t.Content.PdfSha256), "application/pdf", enableRangeProcessing: true,
            entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{t.Content.PdfSha256}\""));
    }

    static async Task<IResult> Download(string token, Guid? visit, HttpContext http, AppDbContext db, ContentStore store, HitClassifier classifier,
        EventRecorder recorder, DeviceCookie device, ShareLinkGate gate, TimeProvider clock, ILoggerFactory logs, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        var t = await FindAsync(db, token, ct);
        if (t is null) return Message(404, "Document not found", "This document link is not known here.");
        if (t.Content.DeletedAt is not null || !store.Exists(t.Content.OriginalSha256)) return Message(410, "Document removed", "The sender has removed this document.");
        if (Closed(t, clock.GetUtcNow()) is { } closed) return Message(410, closed.Title, closed.Text);
        if (!t.AllowDownload) return Message(403, "Downloads are turned off", "The sender shares this document for reading only.");

        var hit = Hit(http, t, device, clock);
        ShareReader? reader = null;
        if (t.Link.EmailGate != ReaderEmailGate.None && !hit.FromSenderDevice && (reader = gate.Reader(http.Request, t.Link)) is null)
            return Message(403, "Give your email address first", "This link asks for the reader's email address: open the link and give it.");
        var verdict = classifier.Classify(hit);
        if (verdict.Verdict != Verdict.Self && StartsTheFile(http.Request))
        {
            // Once per visit: saving the file again from the same open viewer (a double click, a retry) is the same
            // download. The claim is one conditional update, so two requests at once count once on any instance.
            var counted = true;
            if (visit is { } id)
            {
                var claimed = await db.DocumentVisits.Where(v => v.Id == id && v.ContentLinkId == t.Link.Id && v.Downloads == 0)
                    .ExecuteUpdateAsync(u => u.SetProperty(v => v.Downloads, 1).SetProperty(v => v.LastSeenAt, hit.Now), ct);
                counted = claimed == 1 || !await db.DocumentVisits.AnyAsync(v => v.Id == id && v.ContentLinkId == t.Link.Id, ct);
            }
            if (counted)
            {
                try { await recorder.RecordAsync(Event(t, hit, verdict, EventKind.Download, reader), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), ct); }
                catch (Exception e) when (e is not OperationCanceledException) { logs.CreateLogger("EmailTracking.Viewer").LogWarning(e, "Download not recorded"); }
            }
        }
        // Ranges are answered (206), so a browser resumes an interrupted download and a download manager fetches it in
        // parts; the stored file never changes under its name, so its hash is its entity tag (for If-Range).
        return Results.File(store.ObjectPath(t.Content.OriginalSha256), ContentSniffer.MediaType(t.Content.FileType), t.Content.Name,
            entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{t.Content.OriginalSha256}\""), enableRangeProcessing: true);
    }

    /// <summary>
    /// Whether a download request fetches the file from its start: no Range, or a range from byte 0. A resumed download
    /// and a download manager's later parts ask for the rest of a download already counted.
    /// </summary>
    static bool StartsTheFile(HttpRequest request)
    {
        var range = request.GetTypedHeaders().Range;
        return range is null || !range.Unit.Equals("bytes", StringComparison.OrdinalIgnoreCase) || range.Ranges.Any(r => r.From == 0);
    }

    static ShareReader? Reader(DocumentVisit visit) => visit.ReaderEmail is { } email ? new ShareReader(email, visit.ReaderVerified) : null;

    static bool FromSender(HttpContext http, Target t, DeviceCookie device) =>
        device.Read(http.Request) is { } user && (user == t.Link.UserId || user == t.Content.UserId);

    static IResult GateRefused(string token) =>
        ProblemJson(403, "Give your email address first", $"This link asks for the reader's email address: open /d/{token} and give it.");

    /// <summary>
    /// The page in front of a share link that asks for the reader's address: the address form, or (when the link wants
    /// proof and a code was mailed) the code form. Plain HTML without script; nothing about the document but its name.
    /// </summary>
    static IResult GatePage(HttpContext http, string token, Target t, string? pendingEmail, int status, string? error, string? email = null)
    {
        // no-cache as well as no-store: what the forms' antiforgery token sets, which would otherwise override this and
        // log a warning at every gate page.
        http.Response.Headers.CacheControl = "no-cache, no-store";
        http.Response.Headers["X-Robots-Tag"] = "noindex, nofollow";
        http.Items[GatePageItem] = true;
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        // Each form carries the antiforgery token (its cookie is set with it), so another site cannot post a reader's
        // address, a code, or "use another address" from the reader's browser.
        var tokens = http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http);
        var antiforgery = $"<input type=\"hidden\" name=\"{E(tokens.FormFieldName)}\" value=\"{E(tokens.RequestToken)}\">";
        var html = new System.Text.StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append($"<title>{E(t.Content.Name)}</title><link rel=\"stylesheet\" href=\"/css/app.css\"></head><body><main class=\"container\"><section class=\"card gate\" id=\"reader-gate\">")
            .Append($"<h1>{E(t.Content.Name)}</h1>");
        if (error is not null) html.Append($"<p class=\"error\" id=\"gate-error\" role=\"alert\">{E(error)}</p>");
        var action = $"/d/{Uri.EscapeDataString(token)}";
        if (t.Link.EmailGate == ReaderEmailGate.VerifiedEmail && pendingEmail is not null)
        {
            html.Append($"<p>We mailed a 6-digit code to <strong id=\"gate-email\">{E(pendingEmail)}</strong>. Type it here to read the document.</p>")
                .Append($"<form method=\"post\" action=\"{action}/code\">{antiforgery}<label>Code <input name=\"code\" id=\"gate-code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"12\" required autofocus></label> ")
                .Append("<button type=\"submit\" class=\"primary\" id=\"gate-submit\">Read the document</button></form>")
                .Append($"<form method=\"post\" action=\"{action}/reader\">{antiforgery}<input type=\"hidden\" name=\"email\" value=\"{E(pendingEmail)}\"><button type=\"submit\" class=\"link\" id=\"gate-resend\">Send a new code</button></form>")
                .Append($"<form method=\"post\" action=\"{action}/reader\">{antiforgery}<input type=\"hidden\" name=\"another\" value=\"1\"><button type=\"submit\" class=\"link\" id=\"gate-another\">Use another address</button></form>");
        }
        else
        {
            var proof = t.Link.EmailGate == ReaderEmailGate.VerifiedEmail ? " We will mail you a code to confirm it." : "";
            html.Append($"<p>The sender asks for your email address before you read this document.{proof}</p>")
                .Append($"<form method=\"post\" action=\"{action}/reader\">{antiforgery}<label>Your email address <input type=\"email\" name=\"email\" id=\"gate-email-input\" value=\"{E(email)}\" maxlength=\"320\" autocomplete=\"email\" required autofocus></label> ")
                .Append("<button type=\"submit\" class=\"primary\" id=\"gate-submit\">Continue</button></form>")
                .Append("<p class=\"small muted\">The sender sees the address you give with what you read.</p>");
        }
        html.Append("</section></main></body></html>");
        return Results.Content(html.ToString(), "text/html; charset=utf-8", statusCode: status);
    }

    /// <summary>The form on a gate page, read without model binding (a malformed one is an empty form: the page says what is missing).</summary>
    static async Task<Microsoft.AspNetCore.Http.IFormCollection> FormAsync(HttpContext http, CancellationToken ct)
    {
        if (!http.Request.HasFormContentType || http.Request.ContentLength > 4096) return Microsoft.AspNetCore.Http.FormCollection.Empty;
        try { return await http.Request.ReadFormAsync(ct); }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException) { return Microsoft.AspNetCore.Http.FormCollection.Empty; }
    }

    /// <summary>
    /// The gate's form when it came from the gate's own page in this browser (its antiforgery token matches the
    /// browser's cookie); null for a post from another site, or a form without its token.
    /// </summary>
    static async Task<Microsoft.AspNetCore.Http.IFormCollection?> OwnFormAsync(HttpContext http, CancellationToken ct)
    {
        var form = await FormAsync(http, ct);
        // An empty form has no token; an unreadable or oversized one must not be read again by the check.
        if (form.Count == 0) return null;
        return await http.RequestServices.GetRequiredService<IAntiforgery>().IsRequestValidAsync(http) ? form : null;
    }

    /// <summary>A post refused for its antiforgery token: the gate as it stands, saying so; nothing was sent, counted or forgotten.</summary>
    static IResult ForeignForm(HttpContext http, string token, Target t, ShareLinkGate gate) =>
        GatePage(http, token, t, gate.PendingEmail(http.Request, t.Link), 400,
            "This form was not sent from this page (or the page was open too long), so nothing was done. Please try again here.");

    /// <summary>The gate is answered for the link as it is: unknown, removed, turned off, expired or without a gate answer as the page does.</summary>
    static async Task<(Target? Target, IResult? Refused)> GateTargetAsync(string token, HttpContext http, AppDbContext db, TimeProvider clock, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        var t = await FindAsync(db, token, ct);
        if (t is null) return (null, Message(404, "Document not found", "This document link is not known here."));
        if (t.Content.DeletedAt is not null) return (null, Message(410, "Document removed", "The sender has removed this document."));
        if (Closed(t, clock.GetUtcNow()) is { } closed) return (null, Message(410, closed.Title, closed.Text));
        if (t.Link.EmailGate == ReaderEmailGate.None) return (null, Results.Redirect($"/d/{token}", permanent: false, preserveMethod: false));
        return (t, null);
    }

    static string Visitor(HttpContext http) => TrackingApi.ClientIp(http)?.ToString() ?? "unknown";

    static string Until(DateTimeOffset until, DateTimeOffset now) =>
        Math.Max(1, (int)Math.Ceiling((until - now).TotalMinutes)) is var m && m == 1 ? "a minute" : $"{m} minutes";

    /// <summary>POST /d/{token}/reader (form: email): the reader's address; with proof wanted, a code is mailed to it.</summary>
    static async Task<IResult> GiveEmail(string token, HttpContext http, AppDbContext db, ShareLinkGate gate, TimeProvider clock, CancellationToken ct)
    {
        var (t, refused) = await GateTargetAsync(token, http, db, clock, ct);
        if (t is null) return refused!;
        if (await OwnFormAsync(http, ct) is not { } form) return ForeignForm(http, token, t, gate);
        if (form["another"] == "1")
        {
            ShareLinkGate.Forget(http.Response, token);
            return GatePage(http, token, t, null, 200, null);
        }
        var typed = form["email"].ToString();
        if (ShareLinkGate.ParseEmail(typed) is not { } email)
        {
            return GatePage(http, token, t, null, 400, string.IsNullOrWhiteSpace(typed)
                ? "Type your email address to read the document."
                : $"'{Truncate(typed)}' is not an email address. Type one address, like dana@example.com.", typed);
        }
        if (t.Link.EmailGate == ReaderEmailGate.Email)
        {
            gate.Remember(http.Response, token, t.Link, new ShareReader(email, Verified: false));
            return Results.Redirect($"/d/{token}", permanent: false, preserveMethod: false);
        }
        if (!gate.CanVerify)
        {
            return GatePage(http, token, t, null, 503,
                "This link asks to confirm your address by mail, and this server cannot send mail now. Ask the sender for another link.", typed);
        }
        var (sent, until) = await gate.SendCodeAsync(db, http.Response, token, t.Link, t.Content, Visitor(http), email, ct);
        var now = clock.GetUtcNow();
        return sent switch
        {
            ShareLinkGate.CodeSend.Sent => Results.Redirect($"/d/{token}", permanent: false, preserveMethod: false),
            ShareLinkGate.CodeSend.LockedOut => GatePage(http, token, t, null, 429,
                $"Too many wrong codes for {email}. Try again in {Until(until!.Value, now)}.", typed),
            ShareLinkGate.CodeSend.TooMany => GatePage(http, token, t, null, 429,
                $"{ShareLinkGate.MaxCodesPerHour} codes were already mailed to {email} in the last hour. Use one of them, or try again in {Until(until!.Value, now)}.", typed),
            _ => GatePage(http, token, t, null, 503, $"The code could not be mailed to {email}. Try again in a few minutes.", typed),
        };
    }

    /// <summary>POST /d/{token}/code (form: code): the code mailed to the address waiting for it.</summary>
    static async Task<IResult> GiveCode(string token, HttpContext http, AppDbContext db, ShareLinkGate gate, TimeProvider clock, CancellationToken ct)
    {
        var (t, refused) = await GateTargetAsync(token, http, db, clock, ct);
        if (t is null) return refused!;
        if (await OwnFormAsync(http, ct) is not { } form) return ForeignForm(http, token, t, gate);
        if (t.Link.EmailGate != ReaderEmailGate.VerifiedEmail || gate.PendingEmail(http.Request, t.Link) is not { } email)
            return GatePage(http, token, t, null, 400, "Type your email address first: the code comes by mail to it.");
        var (result, left, until) = await gate.CheckCodeAsync(db, t.Link, Visitor(http), email, form["code"].ToString(), ct);
        var now = clock.GetUtcNow();
        switch (result)
        {
            case ShareLinkGate.CodeCheck.Right:
                gate.Remember(http.Response, token, t.Link, new ShareReader(email, Verified: true));
                return Results.Redirect($"/d/{token}", permanent: false, preserveMethod: false);
            case ShareLinkGate.CodeCheck.Wrong:
                return GatePage(http, token, t, email, 400, $"That is not the code we mailed. {Display.Plural(left, "try", "tries")} left.");
            case ShareLinkGate.CodeCheck.LockedOut:
                ShareLinkGate.Forget(http.Response, token);
                return GatePage(http, token, t, null, 429, $"Too many wrong codes for {email}. Try again in {Until(until!.Value, now)}.", email);
            case ShareLinkGate.CodeCheck.Expired:
                return GatePage(http, token, t, email, 400, "That code has expired. Ask for a new one below.");
            default:
                ShareLinkGate.Forget(http.Response, token);
                return GatePage(http, token, t, null, 400, "No code is waiting for this address any more. Type it again for a new code.", email);
        }
    }
}
