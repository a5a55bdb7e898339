using System.Text;
using System.Text.RegularExpressions;

namespace EmailTracking.Server.Outlook;

/// <summary>
/// Serves <c>/addin/launchevent.js</c> with this server's origin written into it. Classic Outlook on Windows runs the
/// on-send handler from that file alone, in a JavaScript-only runtime with no document or location to learn the origin
/// from, and its fetch wants absolute URLs. Every other add-in file is a plain static file.
/// </summary>
public sealed partial class LaunchEventScript(RequestDelegate next, IWebHostEnvironment env)
{
    public const string Path = "/addin/launchevent.js";

    /// <summary>What web-taskpane's launchevent/main.ts holds in place of the origin.</summary>
    public const string OriginPlaceholder = "__ET_SERVER_ORIGIN__";

    (DateTimeOffset Modified, string Text)? cached;

    public async Task Invoke(HttpContext http)
    {
        if (!http.Request.Path.Equals(Path, StringComparison.Ordinal) || !(HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method)))
        {
            await next(http);
            return;
        }
        var file = env.WebRootFileProvider.GetFileInfo(Path.TrimStart('/'));
        if (!file.Exists)
        {
            await next(http);
            return;
        }
        var text = cached is { } c && c.Modified == file.LastModified ? c.Text : null;
        if (text is null)
        {
            using var reader = new StreamReader(file.CreateReadStream(), Encoding.UTF8);
            text = await reader.ReadToEndAsync(http.RequestAborted);
            cached = (file.LastModified, text);
        }
        // The scheme and host this request came by (forwarded headers applied): where the runtime loaded the file
        // from. Anything that is not a plain origin leaves the placeholder, and the handler falls back on its own.
        var origin = $"{http.Request.Scheme}://{http.Request.Host}";
        if (PlainOrigin().IsMatch(origin)) text = text.Replace(OriginPlaceholder, origin, StringComparison.Ordinal);

        http.Response.ContentType = "text/javascript; charset=utf-8";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers.Vary = "Host";
        var bytes = Encoding.UTF8.GetBytes(text);
        http.Response.ContentLength = bytes.Length;
        if (HttpMethods.IsGet(http.Request.Method)) await http.Response.Body.WriteAsync(bytes, http.RequestAborted);
    }

    [GeneratedRegex(@"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$", RegexOptions.CultureInvariant)]
    private static partial Regex PlainOrigin();
}
