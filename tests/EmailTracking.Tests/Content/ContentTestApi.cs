using System.Net.Http.Headers;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Content;

public static class ContentTestApi
{
    public static async Task<HttpResponseMessage> UploadAsync(this HttpClient client, byte[] bytes, string name, bool? allowDownload = null)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "file", name);
        if (allowDownload is { } allow) form.Add(new StringContent(allow ? "true" : "false"), "allowDownload");
        return await client.PostAsync("/api/content", form);
    }

    public static async Task<JsonElement> UploadOkAsync(this TestUser user, byte[] bytes, string name, bool? allowDownload = null)
    {
        var res = await user.Client.UploadAsync(bytes, name, allowDownload);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, $"upload of {name} failed: {(int)res.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>"Add to email": the share link's URL.</summary>
    public static async Task<string> ShareLinkAsync(this TestUser user, JsonElement content)
    {
        var res = await user.Client.PostAsync($"/api/content/{content.GetProperty("id").GetString()}/links", null);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, $"link failed: {(int)res.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("url").GetString()!;
    }

    /// <summary>The problem details of a refused request.</summary>
    public static async Task<(int Status, string Title, string Detail)> ProblemAsync(this HttpResponseMessage res)
    {
        var text = await res.Content.ReadAsStringAsync();
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(text).RootElement;
        return ((int)res.StatusCode, json.GetProperty("title").GetString()!, json.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : "");
    }

    /// <summary>The tracked document links (/d/…) in an HTML body.</summary>
    public static List<string> DocumentLinks(string html) =>
        [.. new AngleSharp.Html.Parser.HtmlParser().ParseDocument(html).QuerySelectorAll("a[href]")
            .Select(a => a.GetAttribute("href")!).Where(h => h.Contains("/d/", StringComparison.Ordinal))];

    public static string Token(string url) => new Uri(url).AbsolutePath.Split('/')[^1];
}
