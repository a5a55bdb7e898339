using System.Security.Claims;
using EmailTracking.Data;

namespace EmailTracking.Server.Accounts;

/// <summary>Who is asking, read from the claims both sign-in paths (cookie and API token) put on the principal.</summary>
public sealed record CurrentUser(Guid Id, Guid TeamId, TeamRole Role, string Email)
{
    public const string TeamClaim = "et:team";

    public bool IsAdmin => Role == TeamRole.Admin;

    public static CurrentUser? From(ClaimsPrincipal principal)
    {
        if (principal.Identity?.IsAuthenticated != true) return null;
        if (!Guid.TryParse(principal.FindFirstValue(ClaimTypes.NameIdentifier), out var id)) return null;
        if (!Guid.TryParse(principal.FindFirstValue(TeamClaim), out var team)) return null;
        var role = Enum.TryParse<TeamRole>(principal.FindFirstValue(ClaimTypes.Role), out var r) ? r : TeamRole.Member;
        return new CurrentUser(id, team, role, principal.FindFirstValue(ClaimTypes.Name) ?? principal.FindFirstValue(ClaimTypes.Email) ?? "");
    }

    public static CurrentUser Required(ClaimsPrincipal principal) =>
        From(principal) ?? throw new InvalidOperationException("The endpoint requires an authenticated user.");
}

/// <summary>The claims every bearer scheme (API token, Microsoft token) puts on the principal, as the cookie's ClaimsFactory does.</summary>
public static class AccountClaims
{
    /// <summary>The id of the personal API token a request came with (so a long stream can see it revoked).</summary>
    public const string ApiTokenClaim = "et:api-token";

    /// <summary>The Microsoft account (<c>tenant/object id</c>) a Microsoft access token signed the request in with.</summary>
    public const string MicrosoftAccountClaim = "et:microsoft-account";

    /// <summary>When the bearer token a request came with stops being taken (Unix seconds): a long stream ends then.</summary>
    public const string TakenUntilClaim = "et:taken-until";

    public static ClaimsPrincipal Principal(Guid userId, string? email, Guid teamId, TeamRole role, string scheme, Guid? apiTokenId = null)
    {
        var identity = new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, userId.ToString()),
            new Claim(ClaimTypes.Name, email ?? ""),
            new Claim(CurrentUser.TeamClaim, teamId.ToString()),
            new Claim(ClaimTypes.Role, role.ToString()),
        ], scheme);
        if (apiTokenId is { } token) identity.AddClaim(new Claim(ApiTokenClaim, token.ToString()));
        return new ClaimsPrincipal(identity);
    }
}
