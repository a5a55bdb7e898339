using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http.HttpResults;

namespace EmailTracking.Server.Salesforce;

/// <summary>Connecting Salesforce (web-server flow in the browser, or JWT bearer), its status and settings.</summary>
public static class SalesforceApi
{
    public const string ConnectPath = "/salesforce/connect";
    public const string CallbackPath = "/salesforce/callback";

    /// <summary>Holds the nonce of a consent in progress: the state Salesforce hands back must match this browser's.</summary>
    static readonly Web.OAuthState State = new("EmailTracking.Salesforce.OAuthState.v1", "et_salesforce_oauth", "/salesforce");

    public sealed record ConnectJwtRequest(string? Username);

    public static void MapSalesforce(this IEndpointRouteBuilder app)
    {
        var flow = app.MapGroup("/salesforce").RequireAuthorization(Auth.ApiPolicy).ExcludeFromDescription();
        flow.MapGet("/connect", Connect);
        flow.MapGet("/callback", Callback);

        var g = app.MapGroup("/api/salesforce").RequireAuthorization(Auth.ApiPolicy).WithTags("Salesforce");
        g.MapGet("/", Get).WithSummary("The team's Salesforce connection: status (active, needs-reconnect) and what is logged");
        g.MapPut("/", Put).WithSummary("Change what is logged to Salesforce (team admins)");
        g.MapDelete("/", Delete).WithSummary("Disconnect Salesforce: the refresh token is revoked (team admins)");
        g.MapPost("/connect-jwt", ConnectJwt).WithSummary("Connect with the JWT bearer flow as the configured, pre-authorised user (Salesforce:JwtUsername; team admins)");
    }

    static ProblemHttpResult AdminsOnly() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden,
        title: "Only a team admin can change the Salesforce connection.");

    /// <summary>
    /// Why the caller may not change the team's Salesforce connection (a 403), or null for a team admin. The Outlook
    /// add-in's Microsoft token is refused, an admin's too, as for webhooks: a connection made, changed or removed with it
    /// decides where the team's sends and answers are logged long after the token ran out.
    /// </summary>
    static ProblemHttpResult? Refusal(HttpContext http, CurrentUser me) =>
        TeamApi.AddinRefusal(http, "Salesforce is not managed from the Outlook add-in.",
            "Use the web app's Salesforce page, or a personal API token (Authorization: Bearer et_…) made on its API tokens page.")
        ?? (me.IsAdmin ? null : AdminsOnly());

    static ProblemHttpResult NotConnected() => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound,
        title: "Salesforce is not connected for this team.");

    static async Task<Ok<SalesforceView>> Get(HttpContext http, SalesforceService sf, CancellationToken ct) =>
        TypedResults.Ok(await sf.ViewAsync(CurrentUser.Required(http.User).TeamId, ct));

    static async Task<Results<Ok<SalesforceView>, ProblemHttpResult>> Put(SalesforceSettingsRequest request, HttpContext http, SalesforceService sf, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        if (request.UnknownRecipients is { } u && !Enum.IsDefined(u))
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "unknownRecipients is skip or create-lead.");
        if (request.RelateToOpportunity is { } o && !Enum.IsDefined(o))
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "relateToOpportunity is server-default, when-one-fits or never.");
        var c = await sf.UpdateSettingsAsync(me.TeamId, request, ct);
        return c is null ? NotConnected() : TypedResults.Ok(await sf.ViewAsync(me.TeamId, ct));
    }

    static async Task<Results<NoContent, ProblemHttpResult>> Delete(HttpContext http, SalesforceService sf, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        return await sf.DisconnectAsync(me.TeamId, ct) ? TypedResults.NoContent() : NotConnected();
    }

    static async Task<Results<Ok<SalesforceView>, ProblemHttpResult>> ConnectJwt(ConnectJwtRequest? request, HttpContext http, SalesforceService sf, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (Refusal(http, me) is { } refused) return refused;
        var (c, problem, forbidden) = await sf.ConnectJwtAsync(me, request?.Username, ct);
        if (forbidden) return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not with the server's JWT user.", detail: problem);
        if (c is null) return TypedResults.Problem(statusCode: StatusCodes.Status422UnprocessableEntity, title: "Salesforce could not be connected.", detail: problem);
        return TypedResults.Ok(sf.View(c, jwtConfigured: true));
    }

    static string RedirectUri(HttpContext http, SalesforceOptions o) =>
        !string.IsNullOrWhiteSpace(o.RedirectUri) ? o.RedirectUri : $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{CallbackPath}";

    static IResult Back(string outcome) => TypedResults.Redirect("/salesforce?salesforce=" + outcome);

    /// <summary>Sends an admin's browser to Salesforce's authorize page; the state names the admin and a nonce kept in a cookie.</summary>
    static IResult Connect(HttpContext http, SalesforceAuth auth, IDataProtectionProvider dp)
    {
        var o = auth.Options;
        if (!o.WebFlowConfigured) return Back("not-configured");
        var me = CurrentUser.Required(http.User);
        if (!me.IsAdmin) return Back("admins-only");
        var state = State.Begin(http, dp, me.Id);
        return TypedResults.Redirect(auth.AuthorizationUrl(RedirectUri(http, o), state).AbsoluteUri);
    }

    /// <summary>Salesforce sends the browser back with a code; it is exchanged only when the state is this admin's and this browser's.</summary>
    static async Task<IResult> Callback(HttpContext http, SalesforceAuth auth, SalesforceService sf, IDataProtectionProvider dp, ILoggerFactory logs,
        string? code, string? state, string? error, CancellationToken ct)
    {
        var log = logs.CreateLogger(typeof(SalesforceApi));
        var o = auth.Options;
        if (!o.WebFlowConfigured) return Back("not-configured");
        var me = CurrentUser.Required(http.User);
        if (!State.Complete(http, dp, me.Id, state))
        {
            log.LogWarning("Salesforce consent callback with a state that is not this user's or this browser's; ignored");
            return Back("bad-state");
        }
        if (!me.IsAdmin) return Back("admins-only");
        if (!string.IsNullOrEmpty(error) || string.IsNullOrEmpty(code)) return Back("denied");

        SalesforceTokenResponse token;
        try
        {
            token = await auth.ExchangeCodeAsync(code, RedirectUri(http, o), ct);
        }
        catch (SalesforceAuthException ex)
        {
            log.LogWarning("Salesforce refused the authorization code: {Error}", ex.Message);
            return Back("failed");
        }
        if (string.IsNullOrEmpty(token.RefreshToken))
        {
            // Without refresh_token in the connected app's scopes, the connection would stop working within hours.
            log.LogWarning("Salesforce granted no refresh token: the connected app lacks the refresh_token scope");
            return Back("no-refresh-token");
        }
        var username = await auth.UsernameAsync(token, ct);
        await sf.SaveAsync(me, SalesforceAuthKind.WebServer, new SalesforceSecret(token.RefreshToken, null), token, username, ct);
        return Back("connected");
    }
}
