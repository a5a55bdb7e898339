using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// A user whose password someone else chose (an admin's initial password, `et users add --password`, `et users
/// set-password`) chooses their own before anything else in the web app: signed in with the cookie, every page that
/// needs sign-in sends them to <see cref="PagePath"/>, and the API refuses the cookie (403). Signing out stays open.
/// API tokens are not web sessions and are not affected: the add-ins and scripts go on.
/// </summary>
public sealed class PasswordChangeRequired(RequestDelegate next)
{
    /// <summary>The sign-in cookie's claim, put there by <see cref="ClaimsFactory"/> while the user's flag is set.</summary>
    public const string Claim = "et:must-change-password";

    public const string PagePath = "/password";

    public Task Invoke(HttpContext http)
    {
        if (http.User.Identity is not { IsAuthenticated: true, AuthenticationType: var type } || type != IdentityConstants.ApplicationScheme
            || !http.User.HasClaim(c => c.Type == Claim)) return next(http);
        var path = http.Request.Path;
        if (path.StartsWithSegments(PagePath) || path.StartsWithSegments("/logout")) return next(http);
        var endpoint = http.GetEndpoint();
        // Anonymous pages (sign-in, the reset link, error pages) and static files stay as they are.
        if (endpoint is null || endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null || endpoint.Metadata.GetMetadata<IAuthorizeData>() is null) return next(http);
        if (path.StartsWithSegments("/api"))
        {
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Choose a new password first.",
                detail: $"The password of this account was set by an administrator: choose your own at {PagePath} before using the web app. " +
                        "API tokens are not affected.").ExecuteAsync(http);
        }
        http.Response.Redirect(PagePath);
        return Task.CompletedTask;
    }
}
