using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>The sender's side of tracked content: the library, "add to email" links, previews and statistics.</summary>
public static class ContentApi
{
    /// <summary>A share link and its settings. <paramref name="AllowDownload"/> null follows the document's choice.</summary>
    public sealed record DocumentLinkResponse(string Token, string Url, string Html, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt,
        bool Disabled, bool? AllowDownload, bool DownloadsAllowed, bool RequireEmail, bool VerifyEmail, bool Expired, int Reads, int Readers,
        DateTimeOffset? LastRead);

    /// <summary>
    /// A share link's settings, for a new link (every field may be left out) and for a change (a field left out stays as
    /// it is; <c>"expiresAt": null</c> takes the expiry away, <c>"allowDownload": null</c> follows the document again).
    /// </summary>
    public sealed record ShareLinkSettings(DateTimeOffset? ExpiresAt, bool ExpiresAtGiven, bool? Disabled, bool? AllowDownload,
        bool AllowDownloadGiven, bool? RequireEmail, bool? VerifyEmail);
    public sealed record DocumentUpdateRequest(bool? AllowDownload, string? Name);

    /// <summary>
    /// The JSON body of a share link's settings, for the API's reference only: <see cref="ShareLinkSettingsReader"/> reads
    /// the body itself (it must tell a field left out from one set to null), so nothing told Swagger there was one, and
    /// its "Try it out" sent none.
    /// </summary>
    /// <param name="ExpiresAt">An ISO 8601 time with its zone; null takes the expiry away.</param>
    /// <param name="AllowDownload">null follows the document's own choice.</param>
    public sealed record ShareLinkSettingsBody(DateTimeOffset? ExpiresAt, bool? Disabled, bool? AllowDownload, bool? RequireEmail, bool? VerifyEmail);

    public static IServiceCollection AddContent(this IServiceCollection services, IConfiguration config)
    {
        services.AddOptions<ContentOptions>().Bind(config.GetSection(ContentOptions.Section));
        services.AddSingleton<ContentStore>();
        services.AddHostedService<ContentWorkSweeper>();
        services.AddSingleton<ConversionSlots>();
        services.AddSingleton<ContentMetrics>();
        services.AddSingleton<OfficeConverter>();
        services.AddSingleton<PdfToolSlots>();
        services.AddSingleton<PdfInspector>();
        services.AddSingleton<Thumbnailer>();
        services.AddSingleton<PdfOptimizer>();
        services.AddScoped<ContentLibrary>();
        services.AddSingleton<ShareLinkGate>();
        return services;
    }

    public static void MapContent(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api/content").RequireAuthorization(Auth.ApiPolicy).WithTags("Content");
        g.MapPost("/", Upload).DisableAntiforgery()
            .WithSummary("Upload a PDF, Word or PowerPoint file (multipart field 'file'; 'allowDownload' true or false). Team plan.")
            .Accepts<IFormFile>("multipart/form-data");
        g.MapGet("/", List).WithSummary("The documents in your library (a team admin sees the team's)");
        g.MapGet("/{id:guid}", Get).WithSummary("One document");
        g.MapPatch("/{id:guid}", Update).WithSummary("Rename a document or allow or forbid downloads");
        g.MapDelete("/{id:guid}", Delete).WithSummary("Remove a document: its links then answer that it was removed");
        g.MapPost("/{id:guid}/links", CreateLink)
            .WithSummary("Add to email or share: a tracked link (JSON body, all optional: expiresAt, allowDownload, requireEmail, verifyEmail); " +
                         "registering a message makes one per recipient")
            .Accepts<ShareLinkSettingsBody>(isOptional: true, "application/json").ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        g.MapGet("/{id:guid}/links", ListLinks).WithSummary("The document's share links, with their settings and read counts");
        g.MapPatch("/{id:guid}/links/{token}", UpdateLink)
            .WithSummary("Change a share link: expiresAt (null: none), disabled, allowDownload (null: the document's), requireEmail, verifyEmail")
            .Accepts<ShareLinkSettingsBody>("application/json").ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        g.MapGet("/{id:guid}/pdf", Pdf).WithSummary("The PDF as recipients see it (sender's preview; nothing is recorded)");
        g.MapGet("/{id:guid}/thumbnails/{page:int}", Thumbnail).WithSummary("A page's thumbnail (PNG)");
        g.MapGet("/{id:guid}/stats", Stats).WithSummary("Visits, time per page, how far and downloads, per recipient (machines=true adds machine visits)");
    }

    static ProblemHttpResult Problem(UploadFailure f) => TypedResults.Problem(statusCode: f.Status, title: f.Title, detail: f.Detail);

    static async Task<Results<Created<ContentDto>, ProblemHttpResult>> Upload(HttpContext http, ContentLibrary library,
        IOptions<ContentOptions> options, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (await library.CheckPlanAsync(me, ct) is { } refused)
        {
            // Refused unread: drained, so that a client still sending reads the refusal rather than a broken pipe.
            PostBodyLimitAttribute.DrainAfterAnswer(http);
            return Problem(refused);
        }

        // A form that says it is larger than it may be is not read: answered at once, naming the limit, and the rest of
        // it drained (PostBodyLimitAttribute.DrainAfterAnswer), so that a client still sending reads the answer rather
        // than a broken pipe.
        var maxForm = ContentLibrary.MaxFormBytes(options.Value.MaxUploadBytes);
        if (http.Request.ContentLength > maxForm)
        {
            PostBodyLimitAttribute.DrainAfterAnswer(http);
            return TypedResults.Problem(statusCode: 413, title: "The file is too large", detail: ContentLibrary.FormTooLarge(options.Value.MaxUploadBytes));
        }
        // Room for the form around the file; the file's own limit is checked while it is copied.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } max)
            max.MaxRequestBodySize = maxForm;
        if (!http.Request.HasFormContentType)
            return TypedResults.Problem(statusCode: 415, title: "Send the file as multipart/form-data", detail: "Put the file in a form field named 'file'.");
        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(new FormOptions { MultipartBodyLengthLimit = maxForm }, ct);
        }
        // A multipart body that ends before its closing boundary is an IOException ("Unexpected end of Stream"), not
        // an InvalidDataException: the client's form cut short, the same 400 (a client that went away hears nothing).
        catch (Exception e) when (e is BadHttpRequestException or InvalidDataException or IOException)
        {
            var tooLarge = e is BadHttpRequestException { StatusCode: 413 } || e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase);
            return tooLarge
                ? TypedResults.Problem(statusCode: 413, title: "The file is too large", detail: $"Files up to {options.Value.MaxUploadBytes / (1024 * 1024)} MB are taken.")
                : TypedResults.Problem(statusCode: 400, title: "The upload could not be read", detail: "The form data was malformed or cut short. Try the upload again.");
        }
        if (form.Files.GetFile("file") is not { } file)
            return TypedResults.Problem(statusCode: 400, title: "No file", detail: "Put the file in a form field named 'file'.");
        if (ParseSwitch(form["allowDownload"]) is not { } allowDownload)
        {
            return TypedResults.Problem(statusCode: 400, title: "allowDownload must be true or false",
                detail: $"'{Clip(form["allowDownload"].ToString(), 40)}' is neither; leave the field out to allow downloads.");
        }
        await using var stream = file.OpenReadStream();
        var (item, failure) = await library.UploadAsync(me, file.FileName, stream, allowDownload, ct);
        return item is null ? Problem(failure!) : TypedResults.Created($"/api/content/{item.Id}", ContentDto.From(item));
    }

    /// <summary>
    /// A form switch: absent or empty means yes (downloads are allowed unless forbidden); true/false, 1/0, yes/no and
    /// on/off (what HTML checkboxes and scripts send) are read; anything else is null, for a 400: a value that was
    /// meant to forbid downloads must never allow them.
    /// </summary>
    internal static bool? ParseSwitch(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" => true,
        "true" or "1" or "yes" or "on" => true,
        "false" or "0" or "no" or "off" => false,
        _ => null,
    };

    static string Clip(string value, int max) => TextClip.Shorten(value, max + 1);

    static async Task<Ok<List<ContentDto>>> List(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var items = await ContentStats.Visible(db, me).Where(c => c.DeletedAt == null).OrderByDescending(c => c.CreatedAt).Take(500)
            .AsNoTracking().ToListAsync(ct);
        return TypedResults.Ok(items.Select(ContentDto.From).ToList());
    }

    static async Task<ContentItem?> FindAsync(HttpContext http, AppDbContext db, Guid id, CancellationToken ct) =>
        await ContentStats.Visible(db, CurrentUser.Required(http.User)).FirstOrDefaultAsync(c => c.Id == id, ct);

    static async Task<Results<Ok<ContentDto>, NotFound>> Get(Guid id, HttpContext http, AppDbContext db, CancellationToken ct) =>
        await FindAsync(http, db, id, ct) is { } item ? TypedResults.Ok(ContentDto.From(item)) : TypedResults.NotFound();

    static async Task<Results<Ok<ContentDto>, NotFound, ValidationProblem>> Update(Guid id, DocumentUpdateRequest request, HttpContext http,
        AppDbContext db, CancellationToken ct)
    {
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item) return TypedResults.NotFound();
        if (request.Name is { } name)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Length > 255)
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["A name of 1 to 255 characters is required."] });
            item.Name = ContentLibrary.DisplayName(name, item.FileType);
        }
        if (request.AllowDownload is { } allow) item.AllowDownload = allow;
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ContentDto.From(item));
    }

    static async Task<Results<NoContent, NotFound>> Delete(Guid id, HttpContext http, AppDbContext db, ContentLibrary library, CancellationToken ct)
    {
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item) return TypedResults.NotFound();
        await library.DeleteAsync(item, ct);
        return TypedResults.NoContent();
    }

    static async Task<Results<Created<DocumentLinkResponse>, NotFound, ProblemHttpResult>> CreateLink(Guid id, HttpContext http, AppDbContext db,
        ContentLibrary library, ShareLinkGate gate, IOptions<TrackingOptions> tracking, TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        // The settings first: a refused body leaves no link behind. No body (the add-ins' "add to email") is a plain link.
        var (settings, bad) = await ShareLinkSettingsReader.ReadAsync(http, ct);
        if (bad is not null) return bad;
        if (await library.CheckPlanAsync(me, ct) is { } refused) return Problem(refused);
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item) return TypedResults.NotFound();
        var now = clock.GetUtcNow();
        var link = new ContentLink { Token = "", ContentId = item.Id, TeamId = item.TeamId, UserId = me.Id, CreatedAt = now };
        if (settings is not null && Apply(link, settings, gate, now) is { } invalid) return invalid;
        link = await ContentLinks.CreateShareAsync(db, item, me.Id, now, ct, link);
        var url = ContentLinks.Url(TrackingUrls.For(http, tracking.Value), link.Token);
        return TypedResults.Created(url, LinkResponse(link, item, url, 0, 0, null, now));
    }

    static DocumentLinkResponse LinkResponse(ContentLink l, ContentItem item, string url, int reads, int readers, DateTimeOffset? lastRead, DateTimeOffset now) =>
        new(l.Token, url, ContentLinks.Html(url, item), l.CreatedAt, l.ExpiresAt, l.DisabledAt is not null, l.AllowDownload,
            l.AllowDownload ?? item.AllowDownload, l.EmailGate != ReaderEmailGate.None, l.EmailGate == ReaderEmailGate.VerifiedEmail,
            l.ExpiresAt is { } end && end <= now, reads, readers, lastRead);

    /// <summary>The settings put on a link; a problem (and the link unchanged in the database) when they do not go together.</summary>
    internal static ProblemHttpResult? Apply(ContentLink link, ShareLinkSettings s, ShareLinkGate gate, DateTimeOffset now)
    {
        if (s.ExpiresAtGiven)
        {
            if (s.ExpiresAt is { } end && end <= now)
            {
                return TypedResults.Problem(statusCode: 400, title: "The expiry is in the past",
                    detail: $"'expiresAt' must be later than now ({now.UtcDateTime:yyyy-MM-dd HH:mm} UTC); to stop a link at once, set 'disabled' to true.");
            }
            link.ExpiresAt = s.ExpiresAt?.ToUniversalTime();
        }
        if (s.Disabled is { } disabled) link.DisabledAt = disabled ? link.DisabledAt ?? now : null;
        if (s.AllowDownloadGiven) link.AllowDownload = s.AllowDownload;
        if (s.RequireEmail is not null || s.VerifyEmail is not null)
        {
            var require = s.RequireEmail ?? (s.VerifyEmail == true || link.EmailGate != ReaderEmailGate.None);
            var verify = s.VerifyEmail ?? (require && link.EmailGate == ReaderEmailGate.VerifiedEmail);
            if (verify && !require)
            {
                return TypedResults.Problem(statusCode: 400, title: "Verifying needs the email asked for",
                    detail: "'verifyEmail' true asks the reader for a code mailed to their address: 'requireEmail' cannot be false with it.");
            }
            if (verify && link.EmailGate != ReaderEmailGate.VerifiedEmail && !gate.CanVerify)
            {
                return TypedResults.Problem(statusCode: 400, title: "This server cannot send the codes",
                    detail: "Verifying a reader's address mails them a code through the server's own relay, and none is configured " +
                            "(Mail:Smtp:Host and Mail:From). Ask the reader's email without verifying it ('verifyEmail': false), or configure the relay.");
            }
            link.EmailGate = verify ? ReaderEmailGate.VerifiedEmail : require ? ReaderEmailGate.Email : ReaderEmailGate.None;
        }
        return null;
    }

    /// <summary>The document's share links (not the per-recipient links of registered messages), newest first.</summary>
    static async Task<Results<Ok<List<DocumentLinkResponse>>, NotFound>> ListLinks(Guid id, HttpContext http, AppDbContext db,
        IOptions<TrackingOptions> tracking, TimeProvider clock, CancellationToken ct)
    {
        if (await FindAsync(http, db, id, ct) is not { } item) return TypedResults.NotFound();
        return TypedResults.Ok(await ShareLinksAsync(db, item, TrackingUrls.For(http, tracking.Value), clock.GetUtcNow(), ct));
    }

    internal static async Task<List<DocumentLinkResponse>> ShareLinksAsync(AppDbContext db, ContentItem item, TrackingUrls urls, DateTimeOffset now,
        CancellationToken ct)
    {
        var links = await db.ContentLinks.AsNoTracking().Where(l => l.ContentId == item.Id && l.TrackedMessageId == null)
            .OrderByDescending(l => l.CreatedAt).Take(500).ToListAsync(ct);
        var ids = links.Select(l => l.Id).ToList();
        // People's visits only, as the document's statistics count them.
        var reads = (await db.DocumentVisits.AsNoTracking().Where(v => ids.Contains(v.ContentLinkId) && v.Verdict == Verdict.Human)
                .Select(v => new { v.ContentLinkId, v.ReaderEmail, v.LastSeenAt }).ToListAsync(ct))
            .ToLookup(v => v.ContentLinkId);
        return links.Select(l => LinkResponse(l, item, ContentLinks.Url(urls, l.Token), reads[l.Id].Count(),
            reads[l.Id].Where(v => v.ReaderEmail != null).Select(v => v.ReaderEmail).Distinct().Count(),
            reads[l.Id].Select(v => (DateTimeOffset?)v.LastSeenAt).Max(), now)).ToList();
    }

    static async Task<Results<Ok<DocumentLinkResponse>, NotFound, ProblemHttpResult>> UpdateLink(Guid id, string token, HttpContext http, AppDbContext db,
        ShareLinkGate gate, IOptions<TrackingOptions> tracking, TimeProvider clock, CancellationToken ct)
    {
        var (settings, bad) = await ShareLinkSettingsReader.ReadAsync(http, ct);
        if (bad is not null) return bad;
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item) return TypedResults.NotFound();
        // Share links only: a recipient's link in a registered message is not the owner's to limit here.
        var link = await db.ContentLinks.FirstOrDefaultAsync(l => l.Token == token && l.ContentId == item.Id && l.TrackedMessageId == null, ct);
        if (link is null) return TypedResults.NotFound();
        var now = clock.GetUtcNow();
        if (settings is null)
            return TypedResults.Problem(statusCode: 400, title: "Nothing to change", detail: ShareLinkSettingsReader.Shape);
        if (Apply(link, settings, gate, now) is { } invalid) return invalid;
        await db.SaveChangesAsync(ct);
        var urls = TrackingUrls.For(http, tracking.Value);
        return TypedResults.Ok((await ShareLinksAsync(db, item, urls, now, ct)).First(l => l.Token == link.Token));
    }

    static async Task<IResult> Pdf(Guid id, HttpContext http, AppDbContext db, ContentStore store, CancellationToken ct)
    {
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item || !store.Exists(item.PdfSha256)) return TypedResults.NotFound();
        return TypedResults.PhysicalFile(store.ObjectPath(item.PdfSha256), "application/pdf", enableRangeProcessing: true,
            entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{item.PdfSha256}\""));
    }

    static async Task<IResult> Thumbnail(Guid id, int page, HttpContext http, AppDbContext db, ContentStore store, CancellationToken ct)
    {
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item || store.ThumbnailPath(item.PdfSha256, page) is not { } path)
            return TypedResults.NotFound();
        http.Response.Headers.CacheControl = "private, max-age=86400";
        return TypedResults.PhysicalFile(path, "image/png");
    }

    static async Task<Results<Ok<ContentStatsResponse>, NotFound>> Stats(Guid id, HttpContext http, AppDbContext db, bool? machines, CancellationToken ct) =>
        await FindAsync(http, db, id, ct) is { } item
            ? TypedResults.Ok(await ContentStats.ForAsync(db, item, machines == true, ct))
            : TypedResults.NotFound();
}
