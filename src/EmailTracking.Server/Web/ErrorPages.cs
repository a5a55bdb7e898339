using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Web;

/// <summary>
/// An error status answered to a person's browser (a missing message, /setup once a user exists) is a page of the web
/// app — its layout, a plain sentence, a way back — with the status code kept. Everything else (the API, the tracking
/// endpoints, the feed, the hooks, the add-ins, the document viewer) keeps its RFC 7807 problem details or its own
/// answer. Without this split the problem-details status pages, which the API needs, also answered a browser's 404
/// with a page of raw JSON. An unhandled exception is still answered with problem details by the exception handler.
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
    /// Two status-code pages, one inside the other, each for its own requests. They are not two branches (UseWhen):
    /// a branch has no route table of its own, and re-executing the error page needs routing to find it.
    /// </summary>
    public static void UseEmailTrackingErrorPages(this WebApplication app)
    {
        app.UseExceptionHandler();
        // Outer: RFC 7807 problem details, exactly as before, for every request the page below leaves alone.
        app.UseStatusCodePages();
        // Inner: the error page, for a browser's page. For any other request it is switched off at once, so the
        // outer one answers; after a browser's page it has written HTML, which the outer one then leaves as it is.
        app.UseStatusCodePagesWithReExecute(Path, "?status={0}");
        app.Use((http, next) =>
        {
            if (!IsForBrowserPage(http) && http.Features.Get<IStatusCodePagesFeature>() is { } pages) pages.Enabled = false;
            return next(http);
        });
    }

    /// <summary>
    /// A request a browser made for a page: it accepts text/html (API clients send application/json or */*, never
    /// text/html by name), and it went to a Razor page or to no endpoint at all outside the programs' paths. Routing
    /// has run by then, so the endpoint is known; a minimal-API endpoint keeps its problem details even on a path a
    /// browser visits (its details say what to fix, e.g. a provider not configured).
    /// </summary>
    public static bool IsForBrowserPage(HttpContext http)
    {
        if (!AcceptsHtml(http.Request)) return false;
        if (http.GetEndpoint() is { } endpoint) return endpoint.Metadata.GetMetadata<PageActionDescriptor>() is not null;
        var path = http.Request.Path;
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
