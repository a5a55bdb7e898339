using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.RealServer;

/// <summary>
/// A server whose machine is set to another time zone than UTC (Tokyo, 9 hours ahead) reads the times of the API as a
/// server set to UTC does: a time with its zone as it says, and one without a zone as UTC, in a JSON body as in the
/// query string. The framework took a zoneless time in a body in the server's zone: a send time 9 hours off.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ServerTimeZoneTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-zone-").FullName;

    [Theory]
    [InlineData("Sqlite")]
    [InlineData("Postgres")]
    public async Task A_time_without_a_zone_is_utc_whatever_zone_the_server_is_in(string provider)
    {
        var settings = new Dictionary<string, string>
        {
            ["Database__Provider"] = provider,
            ["ConnectionStrings__Default"] = provider == "Sqlite" ? $"Data Source={Path.Combine(dir, "et.db")}" : TestPostgres.CreateDatabase(),
            ["TZ"] = "Asia/Tokyo",
        };
        await using var server = await ServerProcess.StartAsync(dir, settings, migrated: provider == "Sqlite");
        var token = await ServerProcess.AddUserAsync(settings, "flynn@encom.test", "Encom", "team", password: null);
        using var api = server.Api(token);

        // Sent an hour ago, as a script writes UTC without a zone (Python's datetime.utcnow().isoformat()).
        var sent = DateTimeOffset.UtcNow.AddHours(-1);
        var zoneless = sent.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss");
        var reg = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Zones", to = new[] { "alan@encom.test" }, html = "<p>hi</p>", sentAt = zoneless,
        });
        var text = await reg.Content.ReadAsStringAsync();
        Assert.True(reg.StatusCode == HttpStatusCode.Created, text);
        var id = JsonDocument.Parse(text).RootElement.GetProperty("id").GetString();
        Assert.Equal(DateTimeOffset.Parse(zoneless + "Z"), await SentAtAsync(api, id));

        // The same when the send time is told afterwards (within minutes of the registration); with a zone, as it says.
        var later = DateTime.UtcNow.AddMinutes(-2).ToString("yyyy-MM-ddTHH:mm:ss");
        var marked = await api.PostAsJsonAsync($"/api/messages/{id}/sent", new { sentAt = later });
        Assert.True(marked.StatusCode == HttpStatusCode.NoContent, await marked.Content.ReadAsStringAsync());
        Assert.Equal(DateTimeOffset.Parse(later + "Z"), await SentAtAsync(api, id));
        var zoned = DateTimeOffset.UtcNow.AddMinutes(-1).ToOffset(TimeSpan.FromHours(-5)).ToString("yyyy-MM-ddTHH:mm:sszzz");
        Assert.Equal(HttpStatusCode.NoContent, (await api.PostAsJsonAsync($"/api/messages/{id}/sent", new { sentAt = zoned })).StatusCode);
        Assert.Equal(DateTimeOffset.Parse(zoned), await SentAtAsync(api, id));

        // A zoneless time in the query string was already UTC: the message, registered just now, is before an hour from
        // now and not before an hour ago.
        var inAnHour = DateTime.UtcNow.AddHours(1).ToString("yyyy-MM-ddTHH:mm:ss");
        var anHourAgo = DateTime.UtcNow.AddHours(-1).ToString("yyyy-MM-ddTHH:mm:ss");
        Assert.Equal(1, (await api.GetFromJsonAsync<JsonElement>($"/api/messages?before={inAnHour}")).GetArrayLength());
        Assert.Equal(0, (await api.GetFromJsonAsync<JsonElement>($"/api/messages?before={anHourAgo}")).GetArrayLength());

        // What is not a time is still a 400 that says where.
        var bad = await api.PostAsJsonAsync($"/api/messages/{id}/sent", new { sentAt = "yesterday" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("$.sentAt", await bad.Content.ReadAsStringAsync());
    }

    static async Task<DateTimeOffset> SentAtAsync(HttpClient api, string? id) =>
        (await api.GetFromJsonAsync<JsonElement>($"/api/messages/{id}")).GetProperty("message").GetProperty("sentAt").GetDateTimeOffset();

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
