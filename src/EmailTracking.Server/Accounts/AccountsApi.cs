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
    public sealed record AddressView(string Address, AddressState State, DateTimeOffset? ConfirmationSentAt);
    public sealed record ConfirmationSent(string Address, DateTimeOffset SentAt, DateTimeOffset ExpiresAt);
    public sealed record SettingsRequest(bool? TrackByDefault);
    public sealed record SettingsResponse(bool TrackByDefault);

    public static void MapAccounts(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/api").RequireAuthorization(Auth.ApiPolicy).WithTags("Account");
        g.MapGet("/me", Me).WithSummary("The signed-in user, their team and plan");
        g.MapPut("/me/settings", PutSettings).WithSummary("The user's settings: trackByDefault (the add-ins start new messages with tracking on)");
        g.MapGet("/me/addresses", ListAddresses).WithSummary("The user's addresses: state sign-in, confirmed or unconfirmed, and when a confirmation mail last went");
        g.MapPost("/me/addresses", AddAddress)
            .WithSummary("Add an alias, unconfirmed: mail from it is the user's own; it signs nobody in until confirmed. The same answer whoever else has the address");
        // Its answers, for Swagger: the handler returns IResult, which it could not read them from (it said 200, never answered).
        g.MapPost("/me/addresses/confirmation", RequestConfirmation)
            .WithSummary("Send a confirmation mail to one of the user's unconfirmed addresses; its link, opened signed in, confirms it")
            .Produces<ConfirmationSent>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status429TooManyRequests).ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        g.MapGet("/tokens", ListTokens).WithSummary("Personal API tokens (never the secret)");
        g.MapPost("/tokens", CreateToken).WithSummary("Create a personal API token; the secret is shown once (not with the Outlook add-in's Microsoft token: 403)");
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

    static async Task<Ok<List<AddressView>>> ListAddresses(HttpContext http, AccountService accounts, CancellationToken ct) =>
        TypedResults.Ok((await accounts.AddressesAsync(CurrentUser.Required(http.User).Id, ct))
            .Select(a => new AddressView(a.Address, a.State, a.ConfirmationSentAt)).ToList());

    /// <summary>
    /// 202 when the mail went; otherwise a problem: 400 (not an address), 404 (not one of the user's), 409 (already
    /// confirmed), 429 with Retry-After (too soon or too many), 502 (the relay refused), 503 (no relay configured).
    /// </summary>
    static async Task<IResult> RequestConfirmation(AddressRequest? request, HttpContext http, AddressConfirmations confirmations, CancellationToken ct)
    {
        var outcome = await confirmations.RequestAsync(CurrentUser.Required(http.User).Id, request?.Address, http, ct);
        if (outcome.Result == ConfirmationRequestResult.Sent)
        {
            return TypedResults.Accepted((string?)null, new ConfirmationSent(outcome.Address!, outcome.SentAt!.Value, outcome.SentAt.Value + AddressConfirmationLinks.Lifetime));
        }
        var (status, title) = outcome.Result switch
        {
            ConfirmationRequestResult.Invalid => (400, "Not an email address."),
            ConfirmationRequestResult.NotYours => (404, "Not one of your addresses."),
            ConfirmationRequestResult.AlreadyConfirmed => (409, "The address is already confirmed."),
            ConfirmationRequestResult.TooSoon or ConfirmationRequestResult.TooMany => (429, "Too many confirmation mails."),
            ConfirmationRequestResult.NotConfigured => (503, "Confirmation mail is not configured on this server."),
            _ => (502, "The confirmation mail could not be sent."),
        };
        if (outcome.RetryAfter is { } wait)
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return TypedResults.Problem(statusCode: status, title: title, detail: outcome.Detail);
    }

    static async Task<Ok<List<TokenInfo>>> ListTokens(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var rows = await db.ApiTokens.Where(t => t.UserId == me.Id).OrderBy(t => t.Name)
            .Select(t => new TokenInfo(t.Id, t.Name, t.Prefix, t.CreatedAt, t.LastUsedAt, t.RevokedAt)).ToListAsync(ct);
        return TypedResults.Ok(rows);
    }

    static async Task<Results<Created<CreatedToken>, ValidationProblem, ProblemHttpResult>> CreateToken(TokenRequest request, HttpContext http, AccountService accounts,
        CancellationToken ct)
    {
        // The add-in gets its Microsoft token silently, for whoever opens Outlook: a personal token made with it would
        // outlive the token, and an admin unlinking that Microsoft account (the Team page) would not end it.
        if (TeamApi.AddinRefusal(http, "Personal API tokens are not made from the Outlook add-in.",
                "Make one on the web app's API tokens page, signed in with your password.") is { } refused)
        {
            return refused;
        }
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
