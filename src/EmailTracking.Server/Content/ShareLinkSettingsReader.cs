using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using static EmailTracking.Server.Content.ContentApi;

namespace EmailTracking.Server.Content;

/// <summary>
/// Reads a share link's settings from a JSON body by hand: a field left out and a field set to null mean different
/// things in a change (keep it; take it away), which a bound record cannot tell apart. Unknown fields and wrong types
/// are refused by name, so that a misspelt "requireEmai" does not leave a link open that was meant to be gated.
/// </summary>
public static class ShareLinkSettingsReader
{
    public const string Shape = "The body must be JSON such as {\"expiresAt\": \"2026-12-31T18:00:00Z\", \"disabled\": false, " +
                                "\"allowDownload\": true, \"requireEmail\": true, \"verifyEmail\": false}; every field may be left out.";

    const int MaxBytes = 4096;

    /// <summary>The settings; null (and no problem) for an empty body.</summary>
    public static async Task<(ShareLinkSettings? Settings, ProblemHttpResult? Problem)> ReadAsync(HttpContext http, CancellationToken ct)
    {
        static ProblemHttpResult Bad(string title, string detail) => TypedResults.Problem(statusCode: 400, title: title, detail: detail);
        if (http.Request.ContentLength > MaxBytes) return (null, TypedResults.Problem(statusCode: 413, title: "Settings too large", detail: $"At most {MaxBytes} bytes."));
        using var buffer = new MemoryStream();
        var chunk = new byte[1024];
        int n;
        while ((n = await http.Request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > MaxBytes) return (null, TypedResults.Problem(statusCode: 413, title: "Settings too large", detail: $"At most {MaxBytes} bytes."));
            buffer.Write(chunk, 0, n);
        }
        if (buffer.Length == 0) return (null, null);
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(buffer.ToArray());
            root = doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return (null, Bad("Malformed settings", Shape));
        }
        if (root.ValueKind != JsonValueKind.Object) return (null, Bad("Malformed settings", Shape));

        DateTimeOffset? expiresAt = null;
        bool expiresGiven = false, allowGiven = false;
        bool? disabled = null, allowDownload = null, requireEmail = null, verifyEmail = null;
        // A name or text that JSON can escape but no string can hold (a lone surrogate, "\ud800") cannot be read as text:
        // the settings' shape is wrong, not the server (it was a 500).
        try
        {
            foreach (var p in root.EnumerateObject())
            {
                switch (p.Name.ToLowerInvariant())
                {
                    case "expiresat":
                        expiresGiven = true;
                        if (p.Value.ValueKind == JsonValueKind.Null) break;
                        // A time without its zone would be read in the server's: refused, as "tomorrow 18:00" is ambiguous.
                        if (p.Value.ValueKind != JsonValueKind.String || !HasZone(p.Value.GetString()!) || !p.Value.TryGetDateTimeOffset(out var end))
                            return (null, Bad("'expiresAt' is not a time", $"'expiresAt' must be an ISO 8601 time with its zone, like \"2026-12-31T18:00:00Z\", or null for no expiry."));
                        expiresAt = end;
                        break;
                    case "allowdownload":
                        allowGiven = true;
                        if (p.Value.ValueKind == JsonValueKind.Null) break;
                        if (Switch(p.Value) is not { } allow) return (null, Bad("'allowDownload' must be true, false or null", "null follows the document's own choice."));
                        allowDownload = allow;
                        break;
                    case "disabled":
                        if (Switch(p.Value) is not { } off) return (null, Bad("'disabled' must be true or false", Shape));
                        disabled = off;
                        break;
                    case "requireemail":
                        if (Switch(p.Value) is not { } require) return (null, Bad("'requireEmail' must be true or false", Shape));
                        requireEmail = require;
                        break;
                    case "verifyemail":
                        if (Switch(p.Value) is not { } verify) return (null, Bad("'verifyEmail' must be true or false", Shape));
                        verifyEmail = verify;
                        break;
                    default:
                        return (null, Bad($"Unknown setting '{Web.TextClip.Shorten(p.Name, 41)}'", Shape));
                }
            }
        }
        catch (InvalidOperationException)
        {
            return (null, Bad("Malformed settings", Shape));
        }
        return (new ShareLinkSettings(expiresAt, expiresGiven, disabled, allowDownload, allowGiven, requireEmail, verifyEmail), null);
    }

    static bool? Switch(JsonElement v) => v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => null };

    static bool HasZone(string text) =>
        text.EndsWith('Z') || text.EndsWith('z') || (text.Length > 6 && text[^6] is '+' or '-' && text[^3] == ':');
}
