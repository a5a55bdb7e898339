using System.Globalization;
using System.Net;
using System.Text.Json;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>One server-sent event: its type, the stream's last event id when it came (the feed's cursor), its data.</summary>
public sealed record SseEvent(string Event, string Cursor, JsonElement Data)
{
    /// <summary>The event-id half of the feed's <c>E:C</c> cursor.</summary>
    public long EventCursor => Cursor.Length == 0 ? -1 : long.Parse(Cursor.Split(':')[0], CultureInfo.InvariantCulture);
}

/// <summary>Reads a server-sent event stream (the live feed) as a browser's EventSource does.</summary>
public sealed class SseReader(Stream stream) : IDisposable
{
    readonly StreamReader reader = new(stream);
    string lastEventId = "";

    /// <summary>The next event of any type. An id without data moves the cursor and dispatches nothing, as in browsers.</summary>
    public async Task<SseEvent> NextEventAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        string type = "";
        string? data = null;
        while (true)
        {
            var line = await reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException();
            if (line.StartsWith("id: ", StringComparison.Ordinal)) lastEventId = line[4..];
            else if (line.StartsWith("event: ", StringComparison.Ordinal)) type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data = line[6..];
            else if (line.Length == 0)
            {
                if (data is not null) return new SseEvent(type.Length == 0 ? "message" : type, lastEventId, JsonDocument.Parse(data).RootElement.Clone());
                type = "";
            }
        }
    }

    /// <summary>The next event other than a verdict change (an <c>activity</c>, or the stream's <c>end</c>): its event id and data.</summary>
    public async Task<(long Id, JsonElement Data)> NextAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = until - DateTime.UtcNow;
            var e = await NextEventAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1));
            if (e.Event != "verdict") return (e.EventCursor, e.Data);
        }
    }

    public void Dispose() => reader.Dispose();
}

public static class Sse
{
    public static Task<SseReader> OpenAsync(HttpClient client, string url, long? lastEventId = null) =>
        OpenAsync(client, url, lastEventId?.ToString(CultureInfo.InvariantCulture));

    /// <param name="lastEventId">The Last-Event-ID header to resume with: a cursor <c>E:C</c>, or an event id alone.</param>
    public static async Task<SseReader> OpenAsync(HttpClient client, string url, string? lastEventId)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, url);
        if (lastEventId is not null) req.Headers.Add("Last-Event-ID", lastEventId);
        var res = await client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
        return new SseReader(await res.Content.ReadAsStreamAsync());
    }
}
