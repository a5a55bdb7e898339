using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;

namespace EmailTracking.Server.Gmail;

/// <summary>
/// The link an unknown Gmail user follows to add their Gmail address to their EmailTracking account. The address in it
/// is the one Google verified in the add-on request; the link is signed and encrypted by Data Protection and lasts a
/// short while, so it cannot be made up or kept for later. Once the address is the user's, the add-on never asks again.
/// </summary>
public sealed class GmailAccountLink(IDataProtectionProvider provider, TimeProvider clock)
{
    public const string PagePath = "/gmail/link";
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(30);

    readonly IDataProtector protector = provider.CreateProtector("EmailTracking.Gmail.AccountLink.v1");

    /// <summary>The expiry travels inside the protected text and is checked against our clock (Data Protection's own expiry reads the machine's).</summary>
    public string Url(string baseUrl, string verifiedAddress)
    {
        var expires = (clock.GetUtcNow() + Lifetime).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return $"{baseUrl.TrimEnd('/')}{PagePath}?t={Uri.EscapeDataString(protector.Protect(expires + "\n" + verifiedAddress))}";
    }

    /// <summary>The verified Gmail address in a link's token, or null when the token is not ours, was altered or has expired.</summary>
    public string? Read(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 2048) return null;
        try
        {
            var text = protector.Unprotect(token);
            var newline = text.IndexOf('\n');
            if (newline <= 0 || !long.TryParse(text.AsSpan(0, newline), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out var expires)) return null;
            return clock.GetUtcNow().ToUnixTimeSeconds() < expires ? text[(newline + 1)..] : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
