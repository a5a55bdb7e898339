using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace EmailTracking.Server.Accounts;

/// <summary>Opaque random identifiers: tracking tokens in URLs and personal API tokens.</summary>
public static class Tokens
{
    /// <summary>144 random bits as 24 URL-safe characters.</summary>
    public static string NewTrackingToken() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(18));

    /// <summary>True when the text could be a tracking token; anything else is refused before touching storage.</summary>
    public static bool LooksLikeTrackingToken(ReadOnlySpan<char> s)
    {
        if (s.Length != 24) return false;
        foreach (var c in s)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_')) return false;
        }
        return true;
    }

    public const string ApiTokenPrefix = "et_";

    /// <summary>A personal API token: a prefix that secret scanners can spot, then 256 random bits.</summary>
    public static string NewApiToken() => ApiTokenPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// API tokens carry 256 bits of entropy, so one SHA-256 is enough to store them safely
    /// (a slow password hash only matters for guessable secrets).
    /// </summary>
    public static byte[] HashApiToken(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
