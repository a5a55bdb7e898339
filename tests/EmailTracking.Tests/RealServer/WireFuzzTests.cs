using System.Net.Sockets;
using System.Text;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace EmailTracking.Tests.RealServer;

/// <summary>
/// Raw bytes on the socket of the real server (Kestrel), for what an HTTP client library refuses to send: NUL bytes,
/// dot segments, invalid UTF-8, huge headers and request lines, made-up methods. Never a 5xx, never a record.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class WireFuzzTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-wire-").FullName;

    static async Task<string> RawAsync(Uri server, byte[] request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        try
        {
            await stream.WriteAsync(request);
        }
        catch (IOException)
        {
            // The server may close before reading everything (e.g. headers too large); its answer still counts.
        }
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var n = await stream.ReadAsync(buffer, cts.Token);
        return Encoding.Latin1.GetString(buffer, 0, n);
    }

    static byte[] Request(string method, string target, string extraHeaders = "") =>
        Encoding.Latin1.GetBytes($"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extraHeaders}\r\n");

    [Fact]
    public async Task Hostile_requests_on_the_wire_get_4xx_or_the_gif_and_record_nothing()
    {
        var db = Path.Combine(dir, "wire.db");
        var settings = new Dictionary<string, string> { ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={db}" };
        await using var server = await ServerProcess.StartAsync(dir, settings);
        var uri = new Uri(server.BaseUrl);

        var cases = new List<(string Name, byte[] Bytes)>
        {
            ("NUL in path", Request("GET", "/o/%00AAAAAAAAAAAAAAAAAAAAAAA.gif")),
            ("raw NUL", Encoding.Latin1.GetBytes("GET /o/\0\0 HTTP/1.1\r\nHost: x\r\n\r\n")),
            ("dot segments", Request("GET", "/o/../../../../etc/passwd")),
            ("encoded dot segments", Request("GET", "/c/..%2f..%2f..%2fetc%2fpasswd")),
            ("invalid UTF-8", [.. Encoding.Latin1.GetBytes("GET /o/"), 0xC3, 0x28, 0xFF, 0xFE, .. Encoding.Latin1.GetBytes(".gif HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")]),
            ("RTL and zero-width", Request("GET", "/c/%E2%80%AE%E2%80%8B%F0%9F%98%80")),
            ("huge header", Request("GET", "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif", "X-Big: " + new string('a', 64 * 1024) + "\r\n")),
            ("many headers", Request("GET", "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif", string.Concat(Enumerable.Range(0, 500).Select(i => $"X-H{i}: v\r\n")))),
            ("huge request line", Request("GET", "/o/" + new string('A', 40 * 1024))),
            ("made-up method", Request("BREW", "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif")),
            ("TRACE", Request("TRACE", "/c/AAAAAAAAAAAAAAAAAAAAAAAA")),
            ("CONNECT", Request("CONNECT", "evil.test:443")),
            ("absolute-form target", Request("GET", "http://evil.test/c/AAAAAAAAAAAAAAAAAAAAAAAA")),
            ("bad version", Encoding.Latin1.GetBytes("GET /o/x HTTP/9.9\r\nHost: x\r\n\r\n")),
            ("garbage", Encoding.Latin1.GetBytes("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")),
            ("chunked lie", Encoding.Latin1.GetBytes("POST /api/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nzzzz\r\n")),
        };

        foreach (var (name, bytes) in cases)
        {
            var answer = await RawAsync(uri, bytes);
            if (answer.Length == 0) continue; // the server closed the connection without an answer: acceptable for garbage
            if (name == "bad version")
            {
                // RFC 9110 names the answer to an HTTP version the server does not speak: 505, from Kestrel itself.
                Assert.StartsWith("HTTP/1.1 505", answer);
                continue;
            }
            Assert.True(answer.StartsWith("HTTP/1.1 4", StringComparison.Ordinal) || answer.StartsWith("HTTP/1.1 200", StringComparison.Ordinal),
                $"{name}: {answer.Split('\r')[0]}");
            if (answer.StartsWith("HTTP/1.1 200", StringComparison.Ordinal)) Assert.Contains("image/gif", answer);
        }

        // Still alive, and nothing was recorded.
        using var http = new HttpClient();
        Assert.Equal("ok", await http.GetStringAsync(server.BaseUrl + "/healthz"));
        using var conn = new SqliteConnection($"Data Source={db}");
        conn.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM Events";
        Assert.Equal(0L, (long)cmd.ExecuteScalar()!);
    }

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
