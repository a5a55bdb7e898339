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
    public sealed record DocumentLinkResponse(string Token, string Url, string Html);
    public sealed record DocumentUpdateRequest(bool? AllowDownload, string? Name);

    public static IServiceCollection AddContent(this IServiceCollection services, IConfiguration config)
    {
        services.AddOptions<ContentOptions>().Bind(config.GetSection(ContentOptions.Section));
        services.AddSingleton<ContentStore>();
        services.AddSingleton<OfficeConverter>();
        services.AddSingleton<Thumbnailer>();
        services.AddSingleton<PdfOptimizer>();
        services.AddScoped<ContentLibrary>();
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
            .WithSummary("Add to email: a tracked link to put in a message body; registering the message makes one per recipient");
        g.MapGet("/{id:guid}/pdf", Pdf).WithSummary("The PDF as recipients see it (sender's preview; nothing is recorded)");
        g.MapGet("/{id:guid}/thumbnails/{page:int}", Thumbnail).WithSummary("A page's thumbnail (PNG)");
        g.MapGet("/{id:guid}/stats", Stats).WithSummary("Visits, time per page, how far and downloads, per recipient (machines=true adds machine visits)");
    }

    static ProblemHttpResult Problem(UploadFailure f) => TypedResults.Problem(statusCode: f.Status, title: f.Title, detail: f.Detail);

    static async Task<Results<Created<ContentDto>, ProblemHttpResult>> Upload(HttpContext http, ContentLibrary library,
        IOptions<ContentOptions> options, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (await library.CheckPlanAsync(me, ct) is { } refused) return Problem(refused);

        // Room for the form around the file; the file's own limit is checked while it is copied.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } max)
            max.MaxRequestBodySize = options.Value.MaxUploadBytes + 1024 * 1024;
        if (!http.Request.HasFormContentType)
            return TypedResults.Problem(statusCode: 415, title: "Send the file as multipart/form-data", detail: "Put the file in a form field named 'file'.");
        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(new FormOptions { MultipartBodyLengthLimit = options.Value.MaxUploadBytes + 1024 * 1024 }, ct);
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
        ContentLibrary library, IOptions<TrackingOptions> tracking, TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (await library.CheckPlanAsync(me, ct) is { } refused) return Problem(refused);
        if (await FindAsync(http, db, id, ct) is not { DeletedAt: null } item) return TypedResults.NotFound();
        var link = await ContentLinks.CreateShareAsync(db, item, me.Id, clock.GetUtcNow(), ct);
        var url = ContentLinks.Url(TrackingUrls.For(http, tracking.Value), link.Token);
        return TypedResults.Created(url, new DocumentLinkResponse(link.Token, url, ContentLinks.Html(url, item)));
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
