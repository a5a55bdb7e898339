using EmailTracking.Server.Mailboxes.Gmail;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Gmail;

/// <summary>
/// Checks the two Google-signed tokens an add-on request carries: the system ID token (Authorization: Bearer), which
/// says the request comes from our deployment, and the user ID token in the event, which names the Gmail user.
/// Signature (JWKS), issuer, audience and expiry are checked by Google.Apis.Auth; never switched off.
/// </summary>
public sealed class GmailAddonVerifier(IOptionsMonitor<GmailAddonOptions> options, ILogger<GmailAddonVerifier> log)
{
    public GmailAddonOptions Options => options.CurrentValue;

    /// <summary>True when the bearer token is Google-signed, for one of our audiences, and our deployment's service account's.</summary>
    public async Task<bool> IsFromOurDeploymentAsync(string? authorization, CancellationToken ct)
    {
        var o = Options;
        if (!o.IsConfigured)
        {
            log.LogWarning("A Gmail add-on request arrived but GmailAddon:Audiences, ServiceAccountEmail and OAuthClientId are not all set; refused");
            return false;
        }
        return await GoogleIdTokens.IsFromServiceAccountAsync(authorization, o.Audiences, o.ServiceAccountEmail!, o.CertsUrl, log,
            "Gmail add-on request (system token)", ct);
    }

    /// <summary>The verified email of the Gmail user, or null when the user ID token is not valid for our OAuth client.</summary>
    public async Task<string?> UserEmailAsync(string userIdToken, CancellationToken ct)
    {
        var payload = await GoogleIdTokens.VerifyAsync(userIdToken, [Options.OAuthClientId!], Options.CertsUrl, log, "Gmail add-on request (user token)", ct);
        return payload is { EmailVerified: true, Email: { Length: > 0 } email } ? email : null;
    }
}
