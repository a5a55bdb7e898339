using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// Cross-site request protection for the REST API. The API takes the web app's sign-in cookie as well as API tokens
/// (the web app's live feed reads <c>/api/feed</c> with it), and a browser sends that cookie along with a form another
/// site makes it post to us. The cookie is SameSite=Lax, which keeps it off such posts in today's browsers; this guard
/// does not depend on that. A request that may change something (any method but GET, HEAD, OPTIONS and TRACE) to an
/// endpoint of the API, signed in by the cookie, must carry <see cref="Header"/>: a form cannot set a header, and a
/// script on another site cannot send one without a CORS preflight, which this server never grants. Requests with an
/// API token, and the anonymous endpoints under <c>/api</c> (push notifications, the Gmail add-on's), are not affected.
/// </summary>
public sealed class CookieApiGuard(RequestDelegate next)
{
    /// <summary>The header a cookie-authenticated API call that changes something must carry (any value).</summary>
    public const string Header = "X-ET-Request";

    public Task Invoke(HttpContext http)
    {
        var method = http.Request.Method;
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method)) return next(http);
        if (http.User.Identity is not { IsAuthenticated: true, AuthenticationType: var type } || type != IdentityConstants.ApplicationScheme) return next(http);
        if (http.Request.Headers.ContainsKey(Header)) return next(http);
        if (http.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>().Any(a => a.Policy == Auth.ApiPolicy) != true) return next(http);
        return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Cross-site request refused.",
            detail: $"An API call that changes something, signed in with the web app's cookie, must carry the {Header} header. " +
                    "Programs call the API with an API token (Authorization: Bearer …) instead.").ExecuteAsync(http);
    }
}
