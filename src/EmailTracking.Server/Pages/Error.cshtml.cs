using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// What a browser is shown instead of a failed page (see <see cref="Web.ErrorPages"/>). The status code the failure
/// set is left as it is: a missing message stays a 404 for the browser, its history and any crawler.
/// </summary>
// The failed request may have been a form post; this page changes nothing, and its token was checked (or refused,
// which is how some of these requests got here) by the page that was asked for.
[IgnoreAntiforgeryToken]
public sealed class ErrorModel : PageModel
{
    public int Status { get; private set; }
    public string Heading { get; private set; } = "";
    public string Explanation { get; private set; } = "";

    /// <summary>
    /// For a failure of the server, the request's id, which its log lines carry (RequestId), to quote when reporting it;
    /// the exception itself is only in the log.
    /// </summary>
    public string? RequestId { get; private set; }

    /// <summary>
    /// A page's post refused for its size (<see cref="Web.PostBodyLimitAttribute"/>: Compose, a document upload): what
    /// the page that refused it says of its limit, and the way back to it.
    /// </summary>
    public Web.PostTooLarge? TooLarge { get; private set; }

    /// <summary>
    /// Where a page that answers 403 leaves who may do what was refused, as a sentence to show instead of the general
    /// one. That one names team admins, which is wrong where an admin was refused: a sequence's pause, resume and enrol
    /// are its owner's alone, and an admin's hand-made post of them was told that a team admin can.
    /// </summary>
    public const string ForbiddenKey = "et.forbidden";

    /// <summary>The refusing page's own sentence (<see cref="ForbiddenKey"/>), or null for the general one.</summary>
    public Microsoft.AspNetCore.Html.IHtmlContent? WhoCan { get; private set; }

    /// <summary>Runs for every method (the failed request may have been a form's post): the page has no handlers to select.</summary>
    public override void OnPageHandlerExecuting(PageHandlerExecutingContext context)
    {
        // Asked for by its own address, there is no failure to describe: the page itself does not exist.
        if (HttpContext.Features.Get<IStatusCodeReExecuteFeature>() is null)
        {
            context.Result = NotFound();
            return;
        }
        Status = Response.StatusCode;
        (Heading, Explanation) = Status switch
        {
            404 => ("Not found", "There is nothing at this address, or it belongs to another team. It may have been removed, or the link may be mistyped."),
            403 => ("Not allowed", "Your account cannot do this. A team admin can."),
            400 => ("That did not work", "The request could not be understood. If you came from a form that had been open for a long time, load it again and retry."),
            405 => ("That did not work", "This address cannot be used that way."),
            413 => ("Too large", "What was sent is larger than this server accepts."),
            429 => ("Too many requests", "Wait a moment, then try again."),
            >= 500 => ("Something went wrong", "The server could not finish this. Try again in a moment."),
            _ => ("That did not work", "The request could not be completed."),
        };
        if (Status == StatusCodes.Status403Forbidden) WhoCan = HttpContext.Items[ForbiddenKey] as Microsoft.AspNetCore.Html.IHtmlContent;
        if (Status >= 500) RequestId = HttpContext.TraceIdentifier;
        if (Status == StatusCodes.Status413PayloadTooLarge && HttpContext.Items[Web.PostTooLarge.Key] is Web.PostTooLarge tooLarge)
        {
            TooLarge = tooLarge;
            Heading = tooLarge.Heading;
        }
    }
}
