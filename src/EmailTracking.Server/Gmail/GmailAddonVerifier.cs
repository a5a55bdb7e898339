using Google.Apis.Auth;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Gmail;

/// <summary>
/// Checks the two Google-signed tokens an add-on request carries: the system ID token (Authorization: Bearer), which
/// says the request comes from our deployment, and the user ID token in the event, which names the Gmail user.
/// Signature (JWKS), issuer, audience and expiry are checked by Google.Apis.Auth; never switched off.
/// </summary>
public sealed class GmailAddonVerifier(IOptionsMonitor<GmailAddonOptions> options, ILogger<GmailAddonVerifier> log)
{
    static readonly string[] GoogleIssuers = ["https://accounts.google.com", "accounts.google.com"];

    public GmailAddonOptions Options => options.CurrentValue;

    SignedTokenVerificationOptions Verification(IEnumerable<string> audiences)
    {
        var v = new SignedTokenVerificationOptions
        {
            IssuedAtClockTolerance = TimeSpan.FromMinutes(1),
            ExpiryClockTolerance = TimeSpan.FromMinutes(1),
        };
        foreach (var i in GoogleIssuers) v.TrustedIssuers.Add(i);
        foreach (var a in audiences.Where(a => !string.IsNullOrWhiteSpace(a))) v.TrustedAudiences.Add(a);
        if (!string.IsNullOrWhiteSpace(Options.CertsUrl)) v.CertificatesUrl = Options.CertsUrl;
        return v;
    }

    /// <summary>True when the bearer token is Google-signed, for one of our audiences, and our deployment's service account's.</summary>
    public async Task<bool> IsFromOurDeploymentAsync(string? authorization, CancellationToken ct)
    {
        var o = Options;
        if (!o.IsConfigured)
        {
            log.LogWarning("A Gmail add-on request arrived but GmailAddon:Audiences, ServiceAccountEmail and OAuthClientId are not all set; refused");
            return false;
        }
        if (authorization is null || !authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        var jwt = authorization["Bearer ".Length..].Trim();
        var payload = await VerifyAsync(jwt, o.Audiences, "system", ct);
        if (payload is null) return false;
        if (payload.EmailVerified && string.Equals(payload.Email, o.ServiceAccountEmail, StringComparison.OrdinalIgnoreCase)) return true;
        // Another add-on project's service account signs valid Google tokens too: only ours counts.
        log.LogWarning("Gmail add-on request signed for {Email} (verified: {Verified}), not the configured service account; refused", payload.Email, payload.EmailVerified);
        return false;
    }

    /// <summary>The verified email of the Gmail user, or null when the user ID token is not valid for our OAuth client.</summary>
    public async Task<string?> UserEmailAsync(string userIdToken, CancellationToken ct)
    {
        var payload = await VerifyAsync(userIdToken, [Options.OAuthClientId!], "user", ct);
        return payload is { EmailVerified: true, Email: { Length: > 0 } email } ? email : null;
    }

    async Task<GoogleJsonWebSignature.Payload?> VerifyAsync(string jwt, IEnumerable<string> audiences, string which, CancellationToken ct)
    {
        if (jwt.Length is 0 or > 10_000) return null;
        try
        {
            return await JsonWebSignature.VerifySignedTokenAsync<GoogleJsonWebSignature.Payload>(jwt, Verification(audiences), ct);
        }
        catch (InvalidJwtException ex)
        {
            log.LogWarning("Gmail add-on request with an invalid {Which} ID token refused: {Problem}", which, ex.Message);
            return null;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or System.Text.Json.JsonException or Newtonsoft.Json.JsonException)
        {
            log.LogWarning("Gmail add-on request with a malformed {Which} ID token refused: {Problem}", which, ex.Message);
            return null;
        }
    }
}
