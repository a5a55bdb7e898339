using EmailTracking.Data;
using Microsoft.AspNetCore.Authentication;
using EmailTracking.Server.Outlook;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Accounts;

public static class Auth
{
    /// <summary>The REST API and the feed: a personal API token, a Microsoft access token (the Outlook add-in) or the web app's sign-in cookie.</summary>
    public const string ApiPolicy = "api";

    /// <summary>
    /// Picks one scheme per request by what it carries: <c>Bearer et_…</c> is ours, another bearer shaped like a JWT is
    /// Microsoft's (when configured), no Authorization header is the cookie. One scheme, so a request is never half
    /// signed in by one and challenged by another.
    /// </summary>
    public const string ApiScheme = "ApiTokenOrMicrosoftOrCookie";

    /// <summary>How long five wrong passwords in a row lock password sign-in.</summary>
    public static readonly TimeSpan FailedSignInLockout = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Whether the account is shut: locked for longer than wrong passwords lock it (an administrator's lock, by
    /// Identity's convention a far lockout end). That ends API tokens, live feeds and the add-ins' Microsoft sign-in.
    /// The lockout wrong passwords cause stops password sign-in only: anyone can type wrong passwords at /login, and
    /// they must not be able to switch off a user's tokens, feeds and add-ins for as long as they keep doing it.
    /// </summary>
    public static bool IsShut(DateTimeOffset? lockoutEnd, DateTimeOffset now) =>
        lockoutEnd is { } end && end > now + FailedSignInLockout + TimeSpan.FromMinutes(1);

    /// <param name="config">The server's configuration; null (et) leaves Microsoft sign-in off.</param>
    public static IServiceCollection AddAccounts(this IServiceCollection services, IConfiguration? config = null)
    {
        services.AddIdentity<User, IdentityRole<Guid>>(o =>
            {
                o.User.RequireUniqueEmail = true;
                // The user name is the sign-in address, already checked as an address (AccountService.TryParseAddress):
                // Identity's default list of name characters would refuse internationalized addresses (zoë@例え.jp).
                o.User.AllowedUserNameCharacters = "";
                o.Password.RequiredLength = 10;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequireUppercase = true;
                o.Password.RequireLowercase = true;
                o.Password.RequireDigit = true;
                o.Lockout.AllowedForNewUsers = true;
                o.Lockout.MaxFailedAccessAttempts = 5;
                o.Lockout.DefaultLockoutTimeSpan = FailedSignInLockout;
                o.SignIn.RequireConfirmedAccount = false;
                // Reset links last PasswordReset:LinkLifetime by our clock, not the default provider's day.
                o.Tokens.PasswordResetTokenProvider = PasswordResetTokenProvider.ProviderName;
            })
            .AddEntityFrameworkStores<AppDbContext>()
            .AddClaimsPrincipalFactory<ClaimsFactory>()
            .AddDefaultTokenProviders()
            .AddTokenProvider<PasswordResetTokenProvider>(PasswordResetTokenProvider.ProviderName)
            .AddTokenProvider<InvitationTokenProvider>(InvitationTokenProvider.ProviderName);
        var reset = services.AddOptions<PasswordResetOptions>()
            .Validate(o => o.LinkLifetime > TimeSpan.Zero && o.LinkLifetime <= TimeSpan.FromDays(7),
                "PasswordReset:LinkLifetime must be more than zero and at most 7 days, e.g. 01:00:00");
        if (config is not null) reset.Bind(config.GetSection(PasswordResetOptions.Section)).ValidateOnStart();
        var team = services.AddOptions<TeamOptions>()
            .Validate(o => o.InvitationLifetime > TimeSpan.Zero && o.InvitationLifetime <= TimeSpan.FromDays(30),
                "Team:InvitationLifetime must be more than zero and at most 30 days, e.g. 7.00:00:00")
            .Validate(o => o.InvitationResendAfter >= TimeSpan.Zero && o.InvitationResendAfter <= TimeSpan.FromDays(1),
                "Team:InvitationResendAfter must be zero or more and at most a day, e.g. 00:01:00")
            .Validate(o => o.InvitationResendsPerDay >= 1 && o.InvitationResendsPerHour >= 1,
                "Team:InvitationResendsPerDay and Team:InvitationResendsPerHour must be at least 1");
        if (config is not null) team.Bind(config.GetSection(TeamOptions.Section)).ValidateOnStart();
        services.TryAddKeyedSingleton(PasswordResetOptions.ClockKey, (sp, _) => sp.GetService<TimeProvider>() ?? TimeProvider.System);

        services.ConfigureApplicationCookie(o =>
        {
            o.Cookie.Name = "et_session";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.LoginPath = "/login";
            o.LogoutPath = "/logout";
            o.AccessDeniedPath = "/login";
            o.SlidingExpiration = true;
            o.ExpireTimeSpan = TimeSpan.FromDays(14);
            // API callers get status codes, not a redirect to a sign-in page.
            o.Events.OnRedirectToLogin = ctx => ApiAware(ctx, StatusCodes.Status401Unauthorized);
            o.Events.OnRedirectToAccessDenied = ctx => ApiAware(ctx, StatusCodes.Status403Forbidden);
            // Identity checks the cookie against the user only every 30 minutes, and never for a lock: an account an
            // administrator shut kept its web session (with sliding expiration, for good) while its API tokens, feeds and
            // add-ins stopped, and a deleted one, moved to another team or no longer an admin kept it for up to 30 minutes
            // with the team and role the cookie names. Every cookie request now looks, as the token handler does; a
            // changed team or role signs the user in again, with the new ones.
            var checkStamp = o.Events.OnValidatePrincipal;
            o.Events.OnValidatePrincipal = async ctx =>
            {
                if (await CookieStillGoodAsync(ctx) == false)
                {
                    ctx.RejectPrincipal();
                    await ctx.HttpContext.SignOutAsync(IdentityConstants.ApplicationScheme);
                    return;
                }
                await checkStamp(ctx);
            };
        });

        var auth = services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, ApiTokenAuthenticationHandler>(ApiTokenAuthenticationHandler.SchemeName, null);
        var microsoft = config is not null && auth.AddMicrosoftSignIn(config);
        auth.AddPolicyScheme(ApiScheme, "API token, Microsoft token or sign-in cookie", o => o.ForwardDefaultSelector = http =>
        {
            string? header = http.Request.Headers.Authorization;
            if (string.IsNullOrEmpty(header)) return IdentityConstants.ApplicationScheme;
            if (microsoft && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                && MicrosoftSignIn.LooksLikeJwt(header["Bearer ".Length..].Trim()))
            {
                return MicrosoftSignIn.SchemeName;
            }
            // Ours, or nobody's: the token handler refuses what is not an API token.
            return ApiTokenAuthenticationHandler.SchemeName;
        });

        services.AddAuthorizationBuilder()
            .AddPolicy(ApiPolicy, p => p
                .AddAuthenticationSchemes(ApiScheme)
                .RequireAuthenticatedUser());

        services.AddScoped<AccountService>();
        services.AddScoped<TeamMembers>();
        services.AddScoped<Invitations>();
        var mail = services.AddOptions<SystemMailOptions>();
        if (config is not null) mail.Bind(config.GetSection(SystemMailOptions.Section));
        mail.ValidateOnStart();
        services.AddSingleton<IValidateOptions<SystemMailOptions>, SystemMailOptionsValidation>();
        // The random source of the retries' spread; tests put a fixed one in its place.
        services.TryAddKeyedSingleton(ServerMailQueue.JitterKey, Random.Shared);
        services.AddSingleton<ISystemMail, SmtpSystemMail>();
        services.AddSingleton<AddressConfirmationLinks>();
        services.AddScoped<AddressConfirmations>();
        services.AddSingleton<PasswordResetLimits>();
        services.AddSingleton<PasswordResetMailer>();
        services.AddSingleton<ServerMailSignal>();
        services.AddSingleton<ServerMailQueue>();
        services.AddSingleton<PasswordResets>();
        services.AddSingleton<DeviceCookie>();
        return services;
    }

    /// <summary>
    /// Whether the sign-in cookie's user still exists, is not shut, and has the team and role the cookie names; null when
    /// the database cannot say: the request then goes on as it did before this check (what it reads fails the same way
    /// and gets the error page, signed in), rather than every signed-in user being signed out by an outage.
    /// </summary>
    static async Task<bool?> CookieStillGoodAsync(Microsoft.AspNetCore.Authentication.Cookies.CookieValidatePrincipalContext ctx)
    {
        if (ctx.Principal is null || CurrentUser.From(ctx.Principal) is not { } me) return false;
        var services = ctx.HttpContext.RequestServices;
        try
        {
            var row = await services.GetRequiredService<AppDbContext>().Users.Where(u => u.Id == me.Id)
                .Select(u => new { u.LockoutEnd, u.TeamId, u.Role, u.SecurityStamp }).FirstOrDefaultAsync(ctx.HttpContext.RequestAborted);
            return row is not null && !IsShut(row.LockoutEnd, services.GetRequiredService<TimeProvider>().GetUtcNow())
                   && row.TeamId == me.TeamId && row.Role == me.Role && !StampChanged(ctx.Principal, row.SecurityStamp);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>
    /// Whether the account's security stamp changed since this sign-in cookie was issued (the password was changed): the
    /// session ends at once rather than at Identity's own check, every 30 minutes. A principal without a stamp (an API
    /// token's, a Microsoft token's) has none to compare.
    /// </summary>
    public static bool StampChanged(System.Security.Claims.ClaimsPrincipal principal, string? stamp) =>
        principal.FindFirst(StampClaim)?.Value is { } issued && issued != stamp;

    static readonly string StampClaim = new ClaimsIdentityOptions().SecurityStampClaimType;

    static Task ApiAware(Microsoft.AspNetCore.Authentication.RedirectContext<Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationOptions> ctx, int status)
    {
        if (ctx.Request.Path.StartsWithSegments("/api"))
        {
            ctx.Response.StatusCode = status;
            return Task.CompletedTask;
        }
        ctx.Response.Redirect(ctx.RedirectUri);
        return Task.CompletedTask;
    }
}
