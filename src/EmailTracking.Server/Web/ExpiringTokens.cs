using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;

namespace EmailTracking.Server.Web;

/// <summary>
/// Text signed and encrypted by Data Protection with an expiry inside it, checked against our clock (Data Protection's
/// own time-limited protector reads the machine's, which tests cannot move). The links in mails and add-on cards that
/// name a user or an address are made with it: they cannot be made up, altered or kept for later.
/// </summary>
public sealed class ExpiringTokens(IDataProtector protector, TimeProvider clock)
{
    public string Protect(string payload, TimeSpan lifetime)
    {
        var expires = (clock.GetUtcNow() + lifetime).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return protector.Protect(expires + "\n" + payload);
    }

    /// <summary>The payload, or null when the token is not ours, was altered or has expired.</summary>
    public string? Unprotect(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 2048) return null;
        try
        {
            var text = protector.Unprotect(token);
            var newline = text.IndexOf('\n');
            if (newline <= 0 || !long.TryParse(text.AsSpan(0, newline), NumberStyles.None, CultureInfo.InvariantCulture, out var expires)) return null;
            return clock.GetUtcNow().ToUnixTimeSeconds() < expires ? text[(newline + 1)..] : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
