using System.Security.Cryptography;
using System.Text.Json;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.DataProtection;

namespace EmailTracking.Server.Outlook;

/// <summary>
/// The one-time link the Outlook add-in offers when its Microsoft account names no EmailTracking user: opened signed in
/// to the web app, it links that account (its tenant and object ids, from the token that asked for the link) to the
/// signed-in user once they confirm. Like the Gmail add-on's link (<see cref="Gmail.GmailAccountLink"/>) it is signed
/// and encrypted by Data Protection and lasts a short while, so it cannot be made up, altered or kept for later; it also
/// carries a random id, recorded when the link is used, so it links once only.
/// </summary>
public sealed class OutlookAccountLink(IDataProtectionProvider provider, TimeProvider clock)
{
    public const string PagePath = "/outlook/link";
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(30);

    readonly ExpiringTokens tokens = new(provider.CreateProtector("EmailTracking.Outlook.AccountLink.v1"), clock);

    /// <summary>The Microsoft account a link names, as its token said when the link was made.</summary>
    /// <param name="Id">The link's random id (32 hex digits): a used link is recorded by it.</param>
    /// <param name="DisplayName">The token's <c>name</c>; '' when it had none.</param>
    /// <param name="SignInName">The token's sign-in name (UPN or email); '' when it had none.</param>
    /// <param name="ExpiresAt">When the link stops working.</param>
    public sealed record Account(string Id, string TenantId, string ObjectId, string DisplayName, string SignInName, DateTimeOffset ExpiresAt);

    sealed record Payload(string Id, string Tid, string Oid, string Name, string Upn, long Expires);

    /// <summary>A new link for the account; tenant and object ids are kept lower case, as they are compared.</summary>
    public string Url(string baseUrl, string tenantId, string objectId, string? displayName, string? signInName)
    {
        var expires = (clock.GetUtcNow() + Lifetime).ToUnixTimeSeconds();
        var payload = new Payload(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), tenantId.ToLowerInvariant(), objectId.ToLowerInvariant(),
            Trim(displayName, 256), Trim(signInName, 320), expires);
        return $"{baseUrl.TrimEnd('/')}{PagePath}?t={Uri.EscapeDataString(tokens.Protect(JsonSerializer.Serialize(payload), Lifetime))}";
    }

    /// <summary>The account a link's token names, or null when the token is not ours, was altered or has expired.</summary>
    public Account? Read(string? token)
    {
        if (tokens.Unprotect(token) is not { } text) return null;
        try
        {
            var p = JsonSerializer.Deserialize<Payload>(text);
            if (p is null || string.IsNullOrEmpty(p.Id) || string.IsNullOrEmpty(p.Tid) || string.IsNullOrEmpty(p.Oid)) return null;
            return new Account(p.Id, p.Tid, p.Oid, p.Name ?? "", p.Upn ?? "", DateTimeOffset.FromUnixTimeSeconds(p.Expires));
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Cut to what the columns hold; a name longer than that is cut, not refused (it only shows which account it is).</summary>
    static string Trim(string? value, int max)
    {
        var v = (value ?? "").Trim();
        return v.Length > max ? v[..max] : v;
    }
}
