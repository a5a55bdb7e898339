using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>Small helpers for the REST API as a client sees it (JSON with kebab-case enums).</summary>
public static class TestApi
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public static async Task<JsonElement> RegisterAsync(this TestUser user, object body)
    {
        var res = await user.Client.PostAsJsonAsync("/api/messages", body, Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, $"register failed: {(int)res.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A message to the given recipients, sent an hour ago so that no timing rule applies.</summary>
    public static Task<JsonElement> RegisterSimpleAsync(this TestUser user, string html = "<p>Hi <a href=\"https://example.com/pricing\">pricing</a></p>",
        bool perRecipient = true, string[]? to = null, DateTimeOffset? sentAt = null) =>
        user.RegisterAsync(new
        {
            from = user.Email,
            subject = "Proposal",
            to = to ?? ["alan@encom.test"],
            html,
            perRecipient,
            sentAt = sentAt ?? DateTimeOffset.UtcNow.AddHours(-1),
        });

    public static string Path(string url) => new Uri(url).PathAndQuery;

    public static async Task<JsonElement> GetJsonAsync(this HttpClient client, string url)
    {
        var res = await client.GetAsync(url);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, $"GET {url}: {(int)res.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
