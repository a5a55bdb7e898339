using EmailTracking.Server.Web;
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

    readonly ExpiringTokens tokens = new(provider.CreateProtector("EmailTracking.Gmail.AccountLink.v1"), clock);

    public string Url(string baseUrl, string verifiedAddress) =>
        $"{baseUrl.TrimEnd('/')}{PagePath}?t={Uri.EscapeDataString(tokens.Protect(verifiedAddress, Lifetime))}";

    /// <summary>The verified Gmail address in a link's token, or null when the token is not ours, was altered or has expired.</summary>
    public string? Read(string? token) => tokens.Unprotect(token);
}
