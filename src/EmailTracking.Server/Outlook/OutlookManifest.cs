using System.Xml;
using System.Xml.Linq;

namespace EmailTracking.Server.Outlook;

/// <summary>
/// The Outlook add-in's XML manifest: addin-manifests/outlook/manifest.xml with the placeholder host and client id
/// replaced. <c>et outlook-manifest --base-url … --client-id …</c> writes it.
/// </summary>
public static class OutlookManifest
{
    public const string PlaceholderBaseUrl = "https://emailtracking.example.com";
    public const string PlaceholderClientId = "00000000-0000-0000-0000-000000000000";

    /// <summary>The twin for sideloading against a local server (Office add-ins load over HTTPS only).</summary>
    public const string LocalhostBaseUrl = "https://localhost:5001";

    /// <summary>The deployable manifest; throws ArgumentException for a base URL or client id it cannot use.</summary>
    public static string Render(string template, string baseUrl, string clientId)
    {
        var normalized = NormalizeBaseUrl(baseUrl);
        if (!Guid.TryParse(clientId.Trim(), out var id) || id == Guid.Empty)
            throw new ArgumentException($"'{clientId}' is not an Entra ID application (client) id: a GUID, from the app registration's overview.");
        var client = id.ToString("D");
        var host = new Uri(normalized).Authority;

        XDocument doc;
        try
        {
            doc = XDocument.Parse(template, LoadOptions.PreserveWhitespace);
        }
        catch (XmlException e)
        {
            throw new ArgumentException($"The manifest template is not well-formed XML: {e.Message}", e);
        }
        // The template's own header comment talks about placeholders that are gone from the result.
        doc.Nodes().OfType<XComment>().Take(1).ToList().ForEach(c => c.Remove());

        // Either committed manifest may serve as the template: the production one or its localhost twin.
        string Fill(string s)
        {
            foreach (var template in new[] { PlaceholderBaseUrl, LocalhostBaseUrl })
            {
                s = s.Replace($"api://{new Uri(template).Authority}/", $"api://{host}/", StringComparison.Ordinal)
                    .Replace(template, normalized, StringComparison.Ordinal);
            }
            return s.Replace(PlaceholderClientId, client, StringComparison.Ordinal);
        }
        foreach (var e in doc.Descendants())
        {
            foreach (var a in e.Attributes()) a.Value = Fill(a.Value);
            foreach (var t in e.Nodes().OfType<XText>()) t.Value = Fill(t.Value);
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + doc.Root!.ToString(SaveOptions.DisableFormatting) + "\n";
    }

    /// <summary>Outlook loads add-in pages over HTTPS only.</summary>
    public static string NormalizeBaseUrl(string baseUrl)
    {
        if (!Uri.TryCreate(baseUrl.Trim(), UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            throw new ArgumentException($"'{baseUrl}' is not an https:// URL; Outlook loads add-ins over HTTPS only.");
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
            throw new ArgumentException($"'{baseUrl}' has a query, fragment or user name; give the bare base URL.");
        return uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }

    /// <summary>Every http(s) URL in the manifest (attribute values and element text).</summary>
    public static List<string> Urls(XDocument manifest) =>
        manifest.Descendants()
            .SelectMany(e => e.Attributes().Where(a => !a.IsNamespaceDeclaration).Select(a => a.Value).Concat(e.Nodes().OfType<XText>().Select(t => t.Value.Trim())))
            .Where(v => v.StartsWith("https://", StringComparison.Ordinal) || v.StartsWith("http://", StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal)
            .ToList();
}
