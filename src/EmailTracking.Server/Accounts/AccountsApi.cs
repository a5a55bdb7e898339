using EmailTracking.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Accounts;

public static class AccountsApi
{
    public sealed record MeResponse(Guid Id, string Email, string? DisplayName, TeamRole Role, Guid TeamId, string TeamName, Plan Plan, List<string> Addresses);
    public sealed record TokenRequest(string? Name);
    public sealed record TokenInfo(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt);
    public sealed record CreatedToken(Guid Id, string Name, string Token);
    public sealed record AddressRequest(string? Address);
    public sealed record SettingsRequest(bool? TrackByDefault);
    public sealed record SettingsResponse(bool TrackByDefault);

    public static void MapAccounts(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api").RequireAuthorization(Auth.ApiPolicy).WithTags("Account");
        g.MapGet("/me", Me).WithSummary("The signed-in user, their team and plan");
        g.MapPut("/me/settings", PutSettings).WithSummary("The user's settings: trackByDefault (the add-ins start new messages with tracking on)");
        g.MapPost("/me/addresses", AddAddress).WithSummary("Add an alias: mail from it is the user's own");
        g.MapGet("/tokens", ListTokens).WithSummary("Personal API tokens (never the secret)");
        g.MapPost("/tokens", CreateToken).WithSummary("Create a personal API token; the secret is shown once");
        g.MapDelete("/tokens/{id:guid}", RevokeToken).WithSummary("Revoke a personal API token");
    }

    static async Task<Results<Ok<MeResponse>, NotFound>> Me(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var row = await db.Users.Where(u => u.Id == me.Id)
            .Select(u => new MeResponse(u.Id, u.Email!, u.DisplayName, u.Role, u.TeamId, u.Team!.Name, u.Team.Plan,
                u.Addresses.Select(a => a.Address).ToList()))
            .FirstOrDefaultAsync(ct);
        return row is null ? TypedResults.NotFound() : TypedResults.Ok(row);
    }

    static async Task<Results<Ok<SettingsResponse>, ValidationProblem, NotFound>> PutSettings(SettingsRequest? request, HttpContext http, AppDbContext db,
        CancellationToken ct)
    {
        if (request?.TrackByDefault is not { } track)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["trackByDefault"] = ["trackByDefault (true or false) is required."] });
        }
        var me = CurrentUser.Required(http.User);
        var n = await db.Users.Where(u => u.Id == me.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.TrackByDefault, track), ct);
        return n == 0 ? TypedResults.NotFound() : TypedResults.Ok(new SettingsResponse(track));
    }

    static async Task<Results<NoContent, ProblemHttpResult>> AddAddress(AddressRequest request, HttpContext http, AccountService accounts, CancellationToken ct)
    {
        try
        {
            await accounts.AddAddressAsync(CurrentUser.Required(http.User).Id, request.Address ?? "", ct);
            return TypedResults.NoContent();
        }
        catch (AccountException ex)
        {
            return TypedResults.Problem(statusCode: 400, title: "The address cannot be added.", detail: ex.Message);
        }
    }

    static async Task<Ok<List<TokenInfo>>> ListTokens(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var rows = await db.ApiTokens.Where(t => t.UserId == me.Id).OrderBy(t => t.Name)
            .Select(t => new TokenInfo(t.Id, t.Name, t.Prefix, t.CreatedAt, t.LastUsedAt, t.RevokedAt)).ToListAsync(ct);
        return TypedResults.Ok(rows);
    }

    static async Task<Results<Created<CreatedToken>, ValidationProblem>> CreateToken(TokenRequest request, HttpContext http, AccountService accounts, CancellationToken ct)
    {
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["A name of 1 to 100 characters is required."] });
        }
        var (entity, token) = await accounts.CreateTokenAsync(CurrentUser.Required(http.User).Id, name, ct);
        return TypedResults.Created($"/api/tokens/{entity.Id}", new CreatedToken(entity.Id, entity.Name, token));
    }

    static async Task<Results<NoContent, NotFound>> RevokeToken(Guid id, HttpContext http, AppDbContext db, TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var n = await db.ApiTokens.Where(t => t.Id == id && t.UserId == me.Id && t.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(t => t.RevokedAt, clock.GetUtcNow()), ct);
        return n == 0 ? TypedResults.NotFound() : TypedResults.NoContent();
    }
}
