using Microsoft.AspNetCore.DataProtection;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// The sender's device mark: a long-lived signed cookie on the tracking host, set whenever the sender is signed in
/// to the web app (later also when the add-in panes load). Opens and clicks that carry it are the sender's own.
/// It names the user only; it cannot sign anyone in.
/// </summary>
public sealed class DeviceCookie(IDataProtectionProvider provider, TimeProvider clock)
{
    public const string Name = "et_device";
    static readonly TimeSpan Lifetime = TimeSpan.FromDays(400);
    readonly ITimeLimitedDataProtector protector = provider.CreateProtector("EmailTracking.DeviceCookie.v1").ToTimeLimitedDataProtector();

    /// <summary>The signed cookie value naming the user.</summary>
    public string Protect(Guid userId) => protector.Protect(userId.ToString("N"), clock.GetUtcNow() + Lifetime);

    public void Issue(HttpContext context, Guid userId)
    {
        context.Response.Cookies.Append(Name, Protect(userId), new CookieOptions
        {
            HttpOnly = true,
            // Webmail shows the pixel inside another site; only SameSite=None travels there, and it needs HTTPS.
            Secure = context.Request.IsHttps,
            SameSite = context.Request.IsHttps ? SameSiteMode.None : SameSiteMode.Lax,
            Expires = clock.GetUtcNow() + Lifetime,
            IsEssential = true,
            Path = "/",
        });
    }

    /// <summary>The user the device belongs to, or null when there is no valid mark.</summary>
    public Guid? Read(HttpRequest request)
    {
        if (!request.Cookies.TryGetValue(Name, out var value) || string.IsNullOrEmpty(value) || value.Length > 1000) return null;
        try
        {
            return Guid.TryParseExact(protector.Unprotect(value), "N", out var id) ? id : null;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;
        }
    }
}
