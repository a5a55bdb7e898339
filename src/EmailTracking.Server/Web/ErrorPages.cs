using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Web;

/// <summary>
/// An error status answered to a person's browser (a missing message, /setup once a user exists) is a page of the web
/// app — its layout, a plain sentence, a way back — with the status code kept. Everything else (the API, the tracking
/// endpoints, the feed, the hooks, the add-ins, the document viewer) keeps its RFC 7807 problem details or its own
/// answer. Without this split the problem-details status pages, which the API needs, also answered a browser's 404
/// with a page of raw JSON. An unhandled exception follows the same split: a browser's page that throws gets the error
/// page with status 500 (a sentence and the request id, never the exception), any other request the exception
/// handler's problem details as before.
/// </summary>
public static class ErrorPages
{
    /// <summary>Where the error page is re-executed; its route is in Pages/Error.cshtml.</summary>
    public const string Path = "/error";

    /// <summary>
    /// Paths that belong to programs, or to recipients (not users of the web app), even when nothing there matched a
    /// route: a miss under them keeps its current answer rather than showing the web app's navigation.
    /// </summary>
    static readonly PathString[] NotWebApp =
    [
        "/api", "/o", "/c", "/d", "/u", "/gmail", "/hooks", "/addin", "/viewer", "/swagger", "/bench", "/healthz",
    ];

    /// <summary>
    /// Two status-code pages, one inside the other, each for its own requests, and inside them the exception handler.
    /// They are not two branches (UseWhen): a branch has no route table of its own, and re-executing the error page
    /// needs routing to find it.
    /// </summary>
    public static void UseEmailTrackingErrorPages(this WebApplication app)
    {
        // Outer: RFC 7807 problem details, exactly as before, for every request the page below leaves alone.
        app.UseStatusCodePages();
        // Inner: the error page, for a browser's page. For any other request it is switched off at once, so the
        // outer one answers; after a browser's page it has written HTML, which the outer one then leaves as it is.
        app.UseStatusCodePagesWithReExecute(Path, "?status={0}");
        // Inside both, so that a browser's page that throws reaches the error page above as a bare 500 (see
        // BrowserPageExceptions); every other request's exception is answered here with problem details, which the
        // status-code pages then leave alone. The exception is logged whoever answers it (.NET 10 would otherwise not log
        // one that an IExceptionHandler took), except a request an endpoint could not read.
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            // A body an endpoint could not read is the client's mistake (UnreadableRequests answers it), not ours to log.
            SuppressDiagnosticsCallback = c => c.Exception is BadHttpRequestException,
        });
        app.Use((http, next) =>
        {
            if (!IsForBrowserPage(http) && http.Features.Get<IStatusCodePagesFeature>() is { } pages) pages.Enabled = false;
            return next(http);
        });
        // Inside the exception handler too, so that its refusal is answered by UnreadableRequests.
        app.Use((http, next) =>
        {
            UnknownCharsets.Check(http.Request);
            return next(http);
        });
    }

    /// <summary>
    /// A request a browser made for a page: it accepts text/html (API clients send application/json or */*, never
    /// text/html by name), and it went to a Razor page or to no endpoint at all outside the programs' paths. Routing
    /// has run by then, so the endpoint is known; a minimal-API endpoint keeps its problem details even on a path a
    /// browser visits (its details say what to fix, e.g. a provider not configured).
    /// </summary>
    public static bool IsForBrowserPage(HttpContext http) => IsForBrowserPage(http.Request, http.GetEndpoint());

    /// <summary>The same, for a request whose endpoint is known apart (the exception handler has cleared it by then).</summary>
    public static bool IsForBrowserPage(HttpRequest request, Endpoint? endpoint)
    {
        if (!AcceptsHtml(request)) return false;
        if (endpoint is not null) return endpoint.Metadata.GetMetadata<PageActionDescriptor>() is not null;
        var path = request.Path;
        foreach (var prefix in NotWebApp)
        {
            if (path.StartsWithSegments(prefix, StringComparison.OrdinalIgnoreCase)) return false;
        }
        return true;
    }

    static bool AcceptsHtml(HttpRequest request)
    {
        foreach (var value in request.GetTypedHeaders().Accept)
        {
            if (value.MediaType.Equals("text/html", StringComparison.OrdinalIgnoreCase) && value.Quality is null or > 0) return true;
        }
        return false;
    }
}

/// <summary>
/// A browser's page that threw: left as a bare 500 for the status-code page around the exception handler to answer
/// with the error page. Any other request is not taken, so the exception handler answers it with problem details as it
/// always did (the pixel and the click handle their own errors and never get here).
/// </summary>
public sealed class BrowserPageExceptions : IExceptionHandler
{
    public ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        var failed = http.Features.Get<IExceptionHandlerFeature>()?.Endpoint;
        if (!ErrorPages.IsForBrowserPage(http.Request, failed)) return ValueTask.FromResult(false);
        // The exception handler has cleared the response and set 500; nothing is written, so the page is re-executed.
        http.Response.StatusCode = StatusCodes.Status500InternalServerError;
        return ValueTask.FromResult(true);
    }
}

/// <summary>
/// A request an API endpoint could not read (a body that is not JSON, or not of the shape the endpoint takes; a
/// missing body or parameter; a body over the size limit): a problem with the status the framework chose (400, 413)
/// that says what was wrong and where, rather than a bare "Bad Request". Minimal APIs throw these (<c>ThrowOnBadRequest</c>) so that the
/// reason reaches this handler; they are the client's mistakes and are not logged as errors.
/// </summary>
public sealed class UnreadableRequests(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException bad) return false;
        http.Response.StatusCode = bad.StatusCode;
        var problem = new Microsoft.AspNetCore.Mvc.ProblemDetails
        {
            Status = bad.StatusCode,
            Title = bad.InnerException is System.Text.Json.JsonException ? "The request body is not valid JSON for this endpoint." : "The request could not be read.",
            Detail = Describe(bad),
        };
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem, Exception = exception });
    }

    /// <summary>Where the JSON went wrong and how, in the reader's words without its .NET type names; else the framework's reason.</summary>
    internal static string Describe(BadHttpRequestException bad)
    {
        if (bad.InnerException is not System.Text.Json.JsonException json) return bad.Message;
        var message = json.Message;
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        // "The JSON value could not be converted to System.String[]." names a .NET type, which says nothing to a caller.
        if (message.StartsWith("The JSON value could not be converted to ", StringComparison.Ordinal)) message = "The value is not of the expected type.";
        var where = json.Path is { Length: > 0 } path ? $" at {path}" : "";
        var position = json.LineNumber is { } line && json.BytePositionInLine is { } column ? $" (line {line + 1}, byte {column + 1})" : "";
        return $"{message.TrimEnd('.')}{where}{position}.";
    }
}

/// <summary>
/// A JSON body whose Content-Type names a charset .NET does not know (<c>application/json; charset=klingon</c>) cannot
/// be read. The framework's JSON reader says so with an <see cref="InvalidOperationException"/>, which is not one of
/// the reading errors minimal APIs turn into a 400, so the client's mistake was answered 500 as if it were ours. It is
/// refused here, before any endpoint reads the body, with the same charset lookup the reader makes: a 415 problem,
/// written by <see cref="UnreadableRequests"/> like every other request that cannot be read, saying what to send.
/// The reader also fails on a quoted charset (<c>charset="utf-8"</c>), which HTTP says is the same charset as the
/// unquoted one (RFC 9110, 5.6.6): that request is valid, so its quotes are taken off here and it is read as usual.
/// </summary>
public static class UnknownCharsets
{
    /// <summary>
    /// Unquotes a JSON request's known charset; throws a 415 <see cref="BadHttpRequestException"/> for one that cannot
    /// be decoded.
    /// </summary>
    public static void Check(HttpRequest request)
    {
        if (request.ContentType is not { } contentType
            || !Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
            || !media.Charset.HasValue
            || !IsJson(media)) return;
        var charset = Microsoft.Net.Http.Headers.HeaderUtilities.RemoveQuotes(media.Charset).ToString();
        try
        {
            _ = System.Text.Encoding.GetEncoding(charset);
        }
        catch (ArgumentException)
        {
            throw new BadHttpRequestException(
                $"The charset '{TextClip.Shorten(charset, 41)}' in the Content-Type is not one this server can decode; send the JSON as UTF-8 (charset=utf-8, or no charset).",
                StatusCodes.Status415UnsupportedMediaType);
        }
        if (charset.Length != media.Charset.Length)
        {
            media.Charset = charset;
            request.ContentType = media.ToString();
        }
    }

    /// <summary>application/json or any +json type: what the framework's JSON reader takes.</summary>
    static bool IsJson(Microsoft.Net.Http.Headers.MediaTypeHeaderValue media) =>
        media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
        || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase);
}
