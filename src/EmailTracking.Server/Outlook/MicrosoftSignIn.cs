using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Identity.Web;
using Microsoft.IdentityModel.JsonWebTokens;

namespace EmailTracking.Server.Outlook;

/// <summary>
/// The <c>AzureAd</c> section: the Entra ID app registration whose access tokens the Outlook add-in sends (MSAL with
/// nested app authentication, or Office SSO). Microsoft.Identity.Web binds the same section (Instance, TenantId,
/// ClientId, Audience, …); the settings below are ours.
/// </summary>
public sealed class AzureAdOptions
{
    public const string Section = "AzureAd";

    /// <summary>https://login.microsoftonline.com/ in production; tests point it at their local issuer.</summary>
    public string Instance { get; set; } = "https://login.microsoftonline.com/";

    /// <summary><c>common</c> (work, school and personal accounts), <c>organizations</c>, or one tenant's id.</summary>
    public string TenantId { get; set; } = "common";

    /// <summary>The app registration's client id. Empty: Microsoft sign-in is off (only API tokens and cookies).</summary>
    public string? ClientId { get; set; }

    /// <summary>
    /// The Application ID URI the add-in asks tokens for (<c>api://{host}/{clientId}</c>, as the manifest's
    /// WebApplicationInfo Resource). Empty: <c>api://{the request's host}/{clientId}</c>.
    /// </summary>
    public string? ApplicationIdUri { get; set; }

    /// <summary>The delegated scope every token must carry (exposed by the app registration).</summary>
    public string RequiredScope { get; set; } = "access_as_user";

    /// <summary>
    /// With a multi-tenant TenantId, the tenants (<c>tid</c>) whose users may sign in; empty: any tenant whose token is
    /// otherwise valid (the user must still have one of their addresses in EmailTracking).
    /// </summary>
    public string[] AllowedTenants { get; set; } = [];

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ClientId);

    public string Authority => $"{Instance.TrimEnd('/')}/{TenantId}";

    public string AppIdUri(HttpRequest request) =>
        !string.IsNullOrWhiteSpace(ApplicationIdUri) ? ApplicationIdUri.TrimEnd('/') : $"api://{request.Host}/{ClientId}";
}

/// <summary>
/// Microsoft access tokens on <c>/api/*</c>: validated by Microsoft.Identity.Web (signature from the tenant's keys,
/// the AAD multi-tenant issuer check — <c>iss</c> must be the issuer template with the token's own <c>tid</c> — the
/// signing key's issuer, audience, lifetime), then the required scope, then the person: the token's sign-in name is
/// looked up among our users' addresses and the principal gets the same claims a personal API token gives.
/// </summary>
public static class MicrosoftSignIn
{
    public const string SchemeName = "Microsoft";

    /// <summary>Why a valid token was not let in, for the challenge to answer 403 with a problem.</summary>
    const string RefusalItem = "EmailTracking.MicrosoftRefusal";

    /// <summary>Registers the scheme only when a client id is configured; answers whether it did.</summary>
    public static bool AddMicrosoftSignIn(this Microsoft.AspNetCore.Authentication.AuthenticationBuilder auth, IConfiguration config)
    {
        var services = auth.Services;
        var section = config.GetSection(AzureAdOptions.Section);
        services.AddOptions<AzureAdOptions>().Bind(section);
        var options = section.Get<AzureAdOptions>() ?? new AzureAdOptions();
        if (!options.IsConfigured) return false;
        services.AddSingleton<OutlookAccountLink>();

        // Instance, TenantId, ClientId and Audience(s) go to Microsoft.Identity.Web; JwtBearer's own settings
        // (RequireHttpsMetadata, which only the tests' plain-HTTP issuer turns off) bind from the same section.
        auth.AddMicrosoftIdentityWebApi(section, SchemeName);
        services.PostConfigure<JwtBearerOptions>(SchemeName, o =>
        {
            // The v2.0 issuer Entra uses for this instance, with the token's own tid put in for multi-tenant settings:
            // Identity.Web's AAD issuer validator checks these templates first (iss must equal the template with the
            // token's tid), and only for other forms (v1.0 tokens) reads the issuer from the metadata document.
            var tv = o.TokenValidationParameters;
            if (tv.ValidIssuer is null && tv.ValidIssuers is null)
            {
                var tenant = options.TenantId is "common" or "organizations" or "consumers" ? "{tenantid}" : options.TenantId;
                tv.ValidIssuers = [$"{options.Instance.TrimEnd('/')}/{tenant}/v2.0"];
            }
            // Never to the cookie or token schemes' claim types: we read the token's own claims below.
            o.MapInboundClaims = false;
            var validated = o.Events.OnTokenValidated;
            o.Events.OnTokenValidated = async context =>
            {
                await validated(context);
                if (context.Result is { Failure: not null } || context.Result is { None: true }) return;
                await AdmitAsync(context);
            };
            var challenge = o.Events.OnChallenge;
            o.Events.OnChallenge = async context =>
            {
                if (context.HttpContext.Items[RefusalItem] is ProblemDetails refusal)
                {
                    context.HandleResponse();
                    context.Response.StatusCode = refusal.Status ?? StatusCodes.Status403Forbidden;
                    await context.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>()
                        .WriteAsync(new ProblemDetailsContext { HttpContext = context.HttpContext, ProblemDetails = refusal });
                    return;
                }
                await challenge(context);
            };
        });
        return true;
    }

    /// <summary>A token is a JWT (three base64url parts) rather than one of our <c>et_</c> API tokens.</summary>
    public static bool LooksLikeJwt(string token) =>
        !token.StartsWith(Tokens.ApiTokenPrefix, StringComparison.Ordinal) && token.Count(c => c == '.') == 2 && token.Length < 16 * 1024;

    static async Task AdmitAsync(TokenValidatedContext context)
    {
        var http = context.HttpContext;
        var options = http.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<AzureAdOptions>>().Value;
        if (context.SecurityToken is not JsonWebToken token)
        {
            context.Fail("Not a JSON web token.");
            return;
        }

        var tenant = Claim(token, "tid");
        if (options.AllowedTenants.Length > 0 && (tenant is null || !options.AllowedTenants.Contains(tenant, StringComparer.OrdinalIgnoreCase)))
        {
            Refuse(context, "tenant-not-allowed", "This Microsoft tenant may not sign in here.",
                $"Tokens of tenant {tenant ?? "(none)"} are not accepted by this server (AzureAd:AllowedTenants).");
            return;
        }

        var scopes = (Claim(token, "scp") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (!scopes.Contains(options.RequiredScope, StringComparer.Ordinal))
        {
            Refuse(context, "scope-missing", "The token lacks the required scope.",
                $"Ask for the scope {options.RequiredScope} of this API ({options.AppIdUri(http.Request)}/{options.RequiredScope}).");
            return;
        }

        var objectId = Claim(token, "oid");
        if (tenant is null || objectId is null)
        {
            Refuse(context, "no-account", "The token names no Microsoft account.", "The Microsoft token has no tid or oid claim.");
            return;
        }
        var db = http.RequestServices.GetRequiredService<AppDbContext>();
        var ct = http.RequestAborted;
        // The account (tenant and object id, which never change) is bound to a user at its first sign-in; the sign-in
        // name can change (Microsoft documents preferred_username and upn as mutable), so later sign-ins go by the binding.
        // An account the user linked themselves (the add-in's link page) comes first: that is who they said they are.
        var key = LoginKey(tenant, objectId);
        var boundTo = await LinkedUserAsync(db, tenant, objectId, ct)
            ?? await db.UserLogins.Where(l => l.LoginProvider == LoginProvider && l.ProviderKey == key).Select(l => (Guid?)l.UserId).FirstOrDefaultAsync(ct);
        var address = SignInAddress(token);
        // Whoever the account is not (yet), the person can link it to their EmailTracking user themselves: the link is
        // made for this token's account, and they confirm it signed in to the web app.
        string LinkUrl() => http.RequestServices.GetRequiredService<OutlookAccountLink>().Url(
            $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}", tenant, objectId, Claim(token, "name"),
            Claim(token, "preferred_username") ?? Claim(token, "upn") ?? address);
        if (boundTo is null && address is null)
        {
            Refuse(context, "no-address", "The token names no email address.",
                "The Microsoft token has no preferred_username or upn claim with an email address. The person can link the account on the link page.", LinkUrl());
            return;
        }
        // Only the user whose email it is (or who verified it): an alias anyone may add would sign its real owner in as them.
        var user = await (boundTo is { } id ? db.Users.Where(u => u.Id == id) : AccountService.SignsInAs(db, address!))
            .Select(u => new { u.Id, u.Email, u.TeamId, u.Role, u.LockoutEnd })
            .AsNoTracking().FirstOrDefaultAsync(ct);
        if (user is null)
        {
            Refuse(context, "not-linked", "This Microsoft account is not linked to an EmailTracking user.",
                $"{address} is not one of any EmailTracking user's addresses that sign in: a Microsoft account signs in as the user " +
                "whose EmailTracking email it is (an alias added to an account does not sign anyone in). Ask your team's admin to create a user " +
                "for it (et users add), or let the person link it: the add-in offers the link page.", LinkUrl());
            return;
        }
        if (boundTo is null && !await BindAsync(db, user.Id, key, ct))
        {
            // Another Microsoft account signed in as this user first: an account in another tenant, or one renamed to
            // this address, does not become them.
            Refuse(context, "linked-elsewhere", "Another Microsoft account is linked to this user.",
                $"{address} is linked to a different Microsoft account (another tenant, or an account that was deleted and made again). " +
                $"An admin can unlink it: et users unlink-microsoft --email {user.Email}; or the person can link this one too on the link page.", LinkUrl());
            return;
        }
        var clock = http.RequestServices.GetRequiredService<TimeProvider>();
        if (Accounts.Auth.IsShut(user.LockoutEnd, clock.GetUtcNow()))
        {
            Refuse(context, "locked", "The account is locked.", "An administrator locked this account.");
            return;
        }
        context.Principal = AccountClaims.Principal(user.Id, user.Email, user.TeamId, user.Role, SchemeName);
        // For a live feed stream, which outlasts this request: it rechecks that the account still signs in as this user,
        // and ends when the token would be refused (its expiry, with the clock skew the validation allows).
        var identity = (System.Security.Claims.ClaimsIdentity)context.Principal.Identity!;
        identity.AddClaim(new System.Security.Claims.Claim(AccountClaims.MicrosoftAccountClaim, key));
        var takenUntil = new DateTimeOffset(DateTime.SpecifyKind(token.ValidTo, DateTimeKind.Utc)) + context.Options.TokenValidationParameters.ClockSkew;
        identity.AddClaim(new System.Security.Claims.Claim(AccountClaims.TakenUntilClaim,
            takenUntil.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        context.Success();
    }

    /// <summary>The user a Microsoft account was linked to on the link page (<see cref="OutlookAccountLink"/>), if any.</summary>
    public static Task<Guid?> LinkedUserAsync(AppDbContext db, string tenant, string objectId, CancellationToken ct)
    {
        var (t, o) = (tenant.ToLowerInvariant(), objectId.ToLowerInvariant());
        return db.MicrosoftAccountLinks.Where(l => l.TenantId == t && l.ObjectId == o).Select(l => (Guid?)l.UserId).FirstOrDefaultAsync(ct);
    }

    /// <summary>The login provider name of Microsoft accounts bound to users (ASP.NET Core Identity's user logins).</summary>
    public const string LoginProvider = "Microsoft";

    /// <summary>A Microsoft account's key: its tenant and object ids, which never change.</summary>
    public static string LoginKey(string tenant, string objectId) => $"{tenant}/{objectId}".ToLowerInvariant();

    /// <summary>Binds the account to the user unless the user has another one already; true when it is the user's now.</summary>
    static async Task<bool> BindAsync(AppDbContext db, Guid userId, string key, CancellationToken ct)
    {
        if (await db.UserLogins.AnyAsync(l => l.UserId == userId && l.LoginProvider == LoginProvider, ct)) return false;
        db.UserLogins.Add(new IdentityUserLogin<Guid> { LoginProvider = LoginProvider, ProviderKey = key, ProviderDisplayName = "Microsoft", UserId = userId });
        try
        {
            await db.SaveChangesAsync(ct);
            return true;
        }
        catch (DbUpdateException)
        {
            // Two first sign-ins at once: the other one bound it. Yes only if it bound it to this user.
            db.ChangeTracker.Clear();
            return await db.UserLogins.AnyAsync(l => l.LoginProvider == LoginProvider && l.ProviderKey == key && l.UserId == userId, ct);
        }
    }

    /// <summary>
    /// The sign-in name: <c>preferred_username</c>, else <c>upn</c>. The <c>email</c> claim is taken only when Entra says
    /// its domain is verified by the tenant (<c>xms_edov</c>): an unverified email is editable by the user and would let
    /// anyone claim anyone's address.
    /// </summary>
    public static string? SignInAddress(JsonWebToken token)
    {
        foreach (var name in new[] { "preferred_username", "upn" })
        {
            if (AccountService.NormalizeAddress(Claim(token, name)) is { } address) return address;
        }
        if (token.TryGetPayloadValue<bool>("xms_edov", out var verified) && verified)
        {
            return AccountService.NormalizeAddress(Claim(token, "email"));
        }
        return null;
    }

    static string? Claim(JsonWebToken token, string name) =>
        token.TryGetPayloadValue<string>(name, out var value) && !string.IsNullOrWhiteSpace(value) ? value : null;

    /// <param name="reason">Why, for programs: the add-in's panes tell the person what to do by it
    /// (<c>not-linked</c>, <c>linked-elsewhere</c>, <c>tenant-not-allowed</c>, <c>scope-missing</c>, <c>no-account</c>, <c>no-address</c>, <c>locked</c>).</param>
    /// <param name="linkUrl">The link page for this token's account, where the refusal is one the person can end by
    /// linking it (<c>not-linked</c>, <c>linked-elsewhere</c>, <c>no-address</c>): the problem's <c>linkUrl</c>.</param>
    static void Refuse(TokenValidatedContext context, string reason, string title, string detail, string? linkUrl = null)
    {
        var problem = new ProblemDetails
        {
            Status = StatusCodes.Status403Forbidden,
            Title = title,
            Detail = detail,
            Type = "https://tools.ietf.org/html/rfc9110#section-15.5.4",
            Extensions = { ["reason"] = reason },
        };
        if (linkUrl is not null) problem.Extensions["linkUrl"] = linkUrl;
        context.HttpContext.Items[RefusalItem] = problem;
        context.Fail(title);
    }
}
