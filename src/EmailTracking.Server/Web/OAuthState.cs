using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;

namespace EmailTracking.Server.Web;

/// <summary>
/// The state of an OAuth sign-in started from the web app (Gmail, Salesforce): it names the signed-in user and a
/// nonce that only this browser holds (an HttpOnly cookie on the callback's path), protected and time-limited with
/// Data Protection. A callback is taken only when the state is intact, recent, this user's and this browser's.
/// </summary>
public sealed class OAuthState(string purpose, string cookieName, string cookiePath)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(15);

    ITimeLimitedDataProtector Protector(IDataProtectionProvider dp) => dp.CreateProtector(purpose).ToTimeLimitedDataProtector();

    /// <summary>Sets the nonce cookie and answers the state to send to the provider.</summary>
    public string Begin(HttpContext http, IDataProtectionProvider dp, Guid userId)
    {
        var nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        http.Response.Cookies.Append(cookieName, nonce, new CookieOptions
        {
            HttpOnly = true, IsEssential = true, Secure = http.Request.IsHttps,
            // Lax: the cookie comes back on the provider's top-level redirect to the callback, not on cross-site subrequests.
            SameSite = SameSiteMode.Lax, Path = cookiePath, MaxAge = Lifetime,
        });
        return Protector(dp).Protect($"{userId:N}|{nonce}", Lifetime);
    }

    /// <summary>Takes the nonce cookie (it is used once) and tells whether the state the provider sent back is this user's and this browser's.</summary>
    public bool Complete(HttpContext http, IDataProtectionProvider dp, Guid userId, string? state)
    {
        var nonce = http.Request.Cookies[cookieName];
        http.Response.Cookies.Delete(cookieName, new CookieOptions { Path = cookiePath });
        if (string.IsNullOrEmpty(state) || string.IsNullOrEmpty(nonce)) return false;
        string payload;
        try
        {
            payload = Protector(dp).Unprotect(state);
        }
        catch (CryptographicException)
        {
            return false; // tampered, foreign or expired
        }
        var parts = payload.Split('|');
        return parts.Length == 2 && parts[0] == userId.ToString("N")
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(parts[1]), Encoding.ASCII.GetBytes(nonce));
    }
}
