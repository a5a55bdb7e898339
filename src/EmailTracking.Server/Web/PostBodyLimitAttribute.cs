using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;

namespace EmailTracking.Server.Web;

/// <summary>
/// Sets a page's post limits before the form is read: antiforgery (an authorization filter of order 1000) reads the
/// whole form before any page filter runs, so a limit set later is read-only and Kestrel's default (30,000,000 bytes)
/// was the one in force. Order 900, as [RequestSizeLimit] and [RequestFormLimits] run. Both limits follow the page's
/// own (<see cref="MaxBodyBytes"/>): the request body's size, and the form reader's limit on one part of the form (one
/// file), whose default of 128 MB would otherwise cut off a file that the page's setting allows, or that the page
/// should refuse by name.
/// </summary>
/// <remarks>
/// A post that says it is larger than that (its Content-Length) is not read: it is answered 413 at once, where Kestrel
/// would have refused it halfway through antiforgery, which answered a bare 400. A form sent without a length (chunked)
/// is read here, before antiforgery, so that one over the limit gets the same answer when Kestrel stops reading it,
/// rather than antiforgery's bare 400 for a form it cannot read. A browser's page gets the error page
/// (<see cref="Pages.ErrorModel"/>), which says what <see cref="TooLarge"/> gives it (left in the request's items for
/// it); anything else a problem with its title and detail.
/// </remarks>
[AttributeUsage(AttributeTargets.Class)]
public abstract class PostBodyLimitAttribute : Attribute, IAsyncAuthorizationFilter, IOrderedFilter
{
    public int Order => 900;

    /// <summary>The most this post may weigh, or null for a post the page leaves to the server's defaults.</summary>
    protected abstract long? MaxBodyBytes(HttpContext http);

    /// <summary>What a post over the limit is told: the problem's title and detail, and the error page's words.</summary>
    protected abstract PostTooLarge TooLarge(HttpContext http);

    public async Task OnAuthorizationAsync(AuthorizationFilterContext context)
    {
        var http = context.HttpContext;
        if (!HttpMethods.IsPost(http.Request.Method) || MaxBodyBytes(http) is not { } max) return;
        if (http.Request.ContentLength > max)
        {
            Refuse(context, TooLarge(http));
            DrainAfterAnswer(http);
            return;
        }
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = max;
        }
        // As [RequestFormLimits] does: a form feature of our own, unless the form has been read already.
        if (http.Features.Get<IFormFeature>() is not { Form: not null })
        {
            http.Features.Set<IFormFeature>(new FormFeature(http.Request, new FormOptions { MultipartBodyLengthLimit = max }));
        }
        if (!http.Request.HasFormContentType) return;
        try
        {
            // Read now, where what went wrong can still be told; antiforgery then takes the form as read.
            await http.Request.ReadFormAsync(http.RequestAborted);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Sent without a Content-Length and longer than the limit: Kestrel stopped reading it.
            Refuse(context, TooLarge(http));
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or BadHttpRequestException)
        {
            // A form cut short or malformed: antiforgery, reading it again, answers 400 as for any form it cannot read.
        }
    }

    static void Refuse(AuthorizationFilterContext context, PostTooLarge tooLarge)
    {
        var http = context.HttpContext;
        // For the error page, which the status code pages run on this same request.
        http.Items[PostTooLarge.Key] = tooLarge;
        context.Result = ErrorPages.IsForBrowserPage(http)
            ? new StatusCodeResult(StatusCodes.Status413PayloadTooLarge)
            : new ObjectResult(new ProblemDetails { Status = StatusCodes.Status413PayloadTooLarge, Title = tooLarge.Title, Detail = tooLarge.Detail })
            {
                StatusCode = StatusCodes.Status413PayloadTooLarge, ContentTypes = { "application/problem+json" },
            };
    }

    /// <summary>
    /// For a post answered without being read: once answered, Kestrel reads what is left of the body for a few seconds
    /// (its drain timeout) so that the client, still sending, can read the answer; over the body limit it would close the
    /// connection at once, and a client other than a browser then sees a broken pipe instead of the answer.
    /// </summary>
    public static void DrainAfterAnswer(HttpContext http)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } drain)
        {
            drain.MaxRequestBodySize = null;
        }
    }
}

/// <summary>
/// What a post refused by <see cref="PostBodyLimitAttribute"/> is told: <paramref name="Title"/> and
/// <paramref name="Detail"/> in the problem; on the error page, <paramref name="Heading"/>, the detail (its element
/// id <c>{Name}-too-large</c>), <paramref name="Advice"/>, and a link back to the page (id <c>back-to-…</c>, after its path).
/// </summary>
public sealed record PostTooLarge(string Name, string Title, string Heading, string Detail, string Advice, string BackHref, string BackText)
{
    /// <summary>Where the refusal leaves it in <see cref="HttpContext.Items"/> for the error page.</summary>
    public const string Key = nameof(PostTooLarge);

    public string BackId => "back-to-" + BackHref.TrimStart('/');
}
