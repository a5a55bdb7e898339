using Google.Apis.Auth;

namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>
/// Google-signed ID tokens, as Pub/Sub pushes and Workspace add-on requests carry them: signature (Google's keys, or
/// the configured URL's), issuer, audience and expiry are checked by Google.Apis.Auth and never switched off.
/// </summary>
public static class GoogleIdTokens
{
    static readonly string[] Issuers = ["https://accounts.google.com", "accounts.google.com"];

    /// <summary>The token of an <c>Authorization: Bearer …</c> header, or null.</summary>
    public static string? Bearer(string? authorization) =>
        authorization is not null && authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? authorization["Bearer ".Length..].Trim()
            : null;

    /// <summary>The verified payload, or null (logged with <paramref name="what"/>) when the token is not valid for these audiences.</summary>
    public static async Task<GoogleJsonWebSignature.Payload?> VerifyAsync(string? jwt, IEnumerable<string> audiences, string? certsUrl,
        ILogger log, string what, CancellationToken ct)
    {
        if (jwt is null || jwt.Length is 0 or > 10_000) return null;
        var verification = new SignedTokenVerificationOptions
        {
            IssuedAtClockTolerance = TimeSpan.FromMinutes(1),
            ExpiryClockTolerance = TimeSpan.FromMinutes(1),
        };
        foreach (var i in Issuers) verification.TrustedIssuers.Add(i);
        foreach (var a in audiences.Where(a => !string.IsNullOrWhiteSpace(a))) verification.TrustedAudiences.Add(a);
        if (!string.IsNullOrWhiteSpace(certsUrl)) verification.CertificatesUrl = certsUrl;
        try
        {
            return await JsonWebSignature.VerifySignedTokenAsync<GoogleJsonWebSignature.Payload>(jwt, verification, ct);
        }
        catch (InvalidJwtException ex)
        {
            log.LogWarning("{What} with an invalid ID token refused: {Problem}", what, ex.Message);
            return null;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or System.Text.Json.JsonException or Newtonsoft.Json.JsonException)
        {
            log.LogWarning("{What} with a malformed ID token refused: {Problem}", what, ex.Message);
            return null;
        }
    }

    /// <summary>
    /// True when the bearer token is valid for these audiences and names this service account (verified): any Google
    /// project's service account gets valid Google tokens, so only the configured one counts.
    /// </summary>
    public static async Task<bool> IsFromServiceAccountAsync(string? authorization, IEnumerable<string> audiences, string serviceAccount,
        string? certsUrl, ILogger log, string what, CancellationToken ct)
    {
        var payload = await VerifyAsync(Bearer(authorization), audiences, certsUrl, log, what, ct);
        if (payload is null) return false;
        if (payload.EmailVerified && string.Equals(payload.Email, serviceAccount, StringComparison.OrdinalIgnoreCase)) return true;
        log.LogWarning("{What} signed for {Email} (verified: {Verified}), not the configured service account; refused", what, payload.Email, payload.EmailVerified);
        return false;
    }
}
