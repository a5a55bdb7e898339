using System.Net;
using System.Text.Json;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>Reads a server-sent event stream (the live feed) as a browser's EventSource does.</summary>
public sealed class SseReader(Stream stream) : IDisposable
{
    readonly StreamReader reader = new(stream);

    public async Task<(long Id, JsonElement Data)> NextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        long id = -1;
        string? data = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException();
            if (line.StartsWith("id: ", StringComparison.Ordinal)) id = long.Parse(line[4..]);
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data = line[6..];
            else if (line.Length == 0 && data is not null) return (id, JsonDocument.Parse(data).RootElement.Clone());
        }
    }

    public void Dispose() => reader.Dispose();
}

public static class Sse
{
    public static async Task<SseReader> OpenAsync(HttpClient client, string url, long? lastEventId = null)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, url);
        if (lastEventId is { } id) req.Headers.Add("Last-Event-ID", id.ToString());
        var res = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
        return new SseReader(await res.Content.ReadAsStreamAsync());
    }
}
