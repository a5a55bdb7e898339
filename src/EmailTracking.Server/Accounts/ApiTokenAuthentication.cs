using System.Text.Encodings.Web;
using EmailTracking.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Accounts;

/// <summary>`Authorization: Bearer et_…` with a personal API token, for the REST API and `et`.</summary>
public sealed class ApiTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AppDbContext db,
    TimeProvider clock)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiToken";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }
        var token = header["Bearer ".Length..].Trim();
        if (!token.StartsWith(Tokens.ApiTokenPrefix, StringComparison.Ordinal) || token.Length > 100)
        {
            return AuthenticateResult.Fail("Malformed API token.");
        }
        var hash = Tokens.HashApiToken(token);
        var row = await db.ApiTokens
            .Where(t => t.Hash == hash)
            .Select(t => new { TokenId = t.Id, t.RevokedAt, UserId = t.User!.Id, t.User.Email, t.User.TeamId, t.User.Role, t.User.LockoutEnd })
            .FirstOrDefaultAsync(Context.RequestAborted);
        if (row is null || row.RevokedAt is not null)
        {
            return AuthenticateResult.Fail("Unknown or revoked API token.");
        }
        if (Auth.IsShut(row.LockoutEnd, clock.GetUtcNow()))
        {
            return AuthenticateResult.Fail("The account is locked.");
        }
        await db.ApiTokens.Where(t => t.Id == row.TokenId)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.LastUsedAt, clock.GetUtcNow()), Context.RequestAborted);

        return AuthenticateResult.Success(new AuthenticationTicket(AccountClaims.Principal(row.UserId, row.Email, row.TeamId, row.Role, SchemeName, row.TokenId), SchemeName));
    }
}
