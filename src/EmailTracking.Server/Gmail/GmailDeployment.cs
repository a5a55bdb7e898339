using System.Text.Json.Nodes;

namespace EmailTracking.Server.Gmail;

/// <summary>
/// The add-on's HTTP deployment descriptor: addin-manifests/gmail/deployment.template.json with the public base URL
/// put in. <c>et gmail-deployment --base-url …</c> writes it.
/// </summary>
public static class GmailDeployment
{
    public const string Placeholder = "{{BASE_URL}}";

    /// <summary>The deployable JSON for this base URL (https, no query); throws ArgumentException for anything else.</summary>
    public static string Render(string template, string baseUrl)
    {
        var normalized = NormalizeBaseUrl(baseUrl);
        var json = template.Replace(Placeholder, normalized, StringComparison.Ordinal);
        // Parse it back: a template that stops being JSON fails here, not in gcloud.
        return JsonNode.Parse(json)!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>Google calls add-on endpoints and opens links over HTTPS only.</summary>
    public static string NormalizeBaseUrl(string baseUrl)
    {
        if (!Uri.TryCreate(baseUrl.Trim(), UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            throw new ArgumentException($"'{baseUrl}' is not an https:// URL; Google calls add-on endpoints over HTTPS only.");
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment) || !string.IsNullOrEmpty(uri.UserInfo))
            throw new ArgumentException($"'{baseUrl}' has a query, fragment or user name; give the bare base URL.");
        return uri.GetLeftPart(UriPartial.Path).TrimEnd('/');
    }

    /// <summary>Every URL Google calls (homepage, contextual, compose actions) in a deployment descriptor.</summary>
    public static List<string> EndpointUrls(JsonNode deployment)
    {
        var urls = new List<string>();
        var addOns = deployment["addOns"];
        if (addOns?["common"]?["homepageTrigger"]?["runFunction"]?.GetValue<string>() is { } home) urls.Add(home);
        if (addOns?["gmail"]?["homepageTrigger"]?["runFunction"]?.GetValue<string>() is { } gmailHome) urls.Add(gmailHome);
        foreach (var t in addOns?["gmail"]?["contextualTriggers"]?.AsArray() ?? [])
            if (t?["onTriggerFunction"]?.GetValue<string>() is { } u) urls.Add(u);
        foreach (var a in addOns?["gmail"]?["composeTrigger"]?["actions"]?.AsArray() ?? [])
            if (a?["runFunction"]?.GetValue<string>() is { } u) urls.Add(u);
        foreach (var a in addOns?["common"]?["universalActions"]?.AsArray() ?? [])
            if (a?["runFunction"]?.GetValue<string>() is { } u) urls.Add(u);
        return urls;
    }
}
