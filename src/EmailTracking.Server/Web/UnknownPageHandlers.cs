using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;

namespace EmailTracking.Server.Web;

/// <summary>
/// A request to a page that names a handler the page does not have (<c>POST /team?handler=Remove</c>, a typo, a form
/// from an older version of the page) is answered 404, and no handler runs. Razor Pages on its own takes a handler
/// without a name for any name it does not know, so such a post ran the page's default <c>OnPost</c>: on Compose, a
/// "handler=Preview" would have sent the message. The name is read where Razor Pages reads it, the route's
/// <c>handler</c> value and then the query's.
/// </summary>
public sealed class UnknownPageHandlerFilter : IPageFilter, IOrderedFilter
{
    /// <summary>First among the page filters: before any of them (the device cookie's) acts on a request that goes nowhere.</summary>
    public int Order => int.MinValue;

    public void OnPageHandlerSelected(PageHandlerSelectedContext context)
    {
    }

    public void OnPageHandlerExecuting(PageHandlerExecutingContext context)
    {
        if (Named(context.HttpContext, context.RouteData) is { } name
            && !string.Equals(context.HandlerMethod?.Name, name, StringComparison.OrdinalIgnoreCase))
        {
            context.Result = new NotFoundResult();
        }
    }

    public void OnPageHandlerExecuted(PageHandlerExecutedContext context)
    {
    }

    /// <summary>The handler the request names, or null when it names none (the page's default handler).</summary>
    static string? Named(HttpContext http, RouteData route)
    {
        var name = Convert.ToString(route.Values["handler"], System.Globalization.CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(name)) return name;
        return http.Request.Query.TryGetValue("handler", out var values) && !string.IsNullOrEmpty(values[0]) ? values[0] : null;
    }
}
