namespace EmailTracking.Server.Tracking;

/// <summary>Builds pixel and click URLs on the public base URL of the tracking host.</summary>
public sealed class TrackingUrls(string baseUrl, string messageIdDomain)
{
    public string MessageIdDomain { get; } = messageIdDomain;

    public string Pixel(string token) => $"{baseUrl}/o/{token}.gif";

    public string Click(string token) => $"{baseUrl}/c/{token}";

    /// <summary>Configured base URL, or (for local use) the URL the request came in on.</summary>
    public static TrackingUrls For(HttpContext http, TrackingOptions options)
    {
        var baseUrl = string.IsNullOrWhiteSpace(options.PublicBaseUrl)
            ? $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}"
            : options.PublicBaseUrl.TrimEnd('/');
        var domain = options.MessageIdDomain;
        if (string.IsNullOrWhiteSpace(domain))
        {
            domain = Uri.TryCreate(baseUrl, UriKind.Absolute, out var u) ? u.Host : "emailtracking.local";
        }
        return new TrackingUrls(baseUrl, domain);
    }
}
