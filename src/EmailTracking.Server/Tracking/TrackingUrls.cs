namespace EmailTracking.Server.Tracking;

/// <summary>Builds pixel and click URLs on the public base URL of the tracking host.</summary>
public sealed class TrackingUrls(string baseUrl, string messageIdDomain)
{
    /// <summary>The public base URL, without a trailing slash: the tracking host's, which is the web app's too.</summary>
    public string BaseUrl => baseUrl;

    public string MessageIdDomain { get; } = messageIdDomain;

    public string Pixel(string token) => $"{baseUrl}/o/{token}.gif";

    public string Click(string token) => $"{baseUrl}/c/{token}";

    /// <summary>A sequence recipient's unsubscribe page.</summary>
    public string Unsubscribe(string token) => $"{baseUrl}/u/{token}";

    /// <summary>A tracked document link (the viewer).</summary>
    public string Document(string token) => $"{baseUrl}/d/{token}";

    /// <summary>The token of a tracked document link on this host, or null when the URL is anything else.</summary>
    public string? DocumentToken(string href)
    {
        if (!Uri.TryCreate(href.Trim(), UriKind.Absolute, out var uri) || !Uri.TryCreate(baseUrl + "/", UriKind.Absolute, out var root)) return null;
        if (!string.Equals(uri.Host, root.Host, StringComparison.OrdinalIgnoreCase) || uri.Port != root.Port) return null;
        var prefix = root.AbsolutePath + "d/";
        var path = uri.AbsolutePath;
        if (!path.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var token = path[prefix.Length..];
        return Accounts.Tokens.LooksLikeTrackingToken(token) ? token : null;
    }

    /// <summary>Configured base URL, or (for local use) the URL the request came in on.</summary>
    public static TrackingUrls For(HttpContext http, TrackingOptions options) =>
        For(string.IsNullOrWhiteSpace(options.PublicBaseUrl) ? $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}" : options.PublicBaseUrl, options);

    /// <summary>On a given base URL (background work has no request: the configured URL, or the server's own address).</summary>
    public static TrackingUrls For(string baseUrl, TrackingOptions options)
    {
        baseUrl = baseUrl.TrimEnd('/');
        var domain = options.MessageIdDomain;
        if (string.IsNullOrWhiteSpace(domain))
        {
            domain = Uri.TryCreate(baseUrl, UriKind.Absolute, out var u) ? u.Host : "emailtracking.local";
        }
        return new TrackingUrls(baseUrl, domain);
    }
}
