using System.Net;
using System.Net.Sockets;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Web;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Tracking;

/// <summary>
/// Request header values that are not UTF-8 (an old mail client's Latin-1 user agent) on the wire of a real Kestrel
/// listener, whose parser the in-memory test server skips: the pixel still answers its image and records the open, the
/// click still redirects. Kestrel's own reading refused such a request with a 400 before any endpoint ran.
/// </summary>
public sealed class HeaderEncodingTests : IAsyncLifetime
{
    readonly SqliteApp app = new();
    Uri server = null!;

    public Task InitializeAsync()
    {
        app.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        app.StartServer();
        server = app.ClientOptions.BaseAddress;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await ((IAsyncLifetime)app).DisposeAsync();

    /// <summary>One request on its own connection, as raw bytes; the answer's head and body as Latin-1 text.</summary>
    async Task<string> RawAsync(string path, byte[] userAgent)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        byte[] request = [.. Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nUser-Agent: "),
            .. userAgent, .. "\r\n\r\n"u8];
        await stream.WriteAsync(request);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var answer = new MemoryStream();
        await stream.CopyToAsync(answer, cts.Token);
        return Encoding.Latin1.GetString(answer.ToArray());
    }

    /// <summary>A user whose client calls the Kestrel listener (a new client's address is the in-memory server's).</summary>
    async Task<TestUser> NewUserAsync()
    {
        var user = await app.NewUserAsync();
        user.Client.BaseAddress = server;
        return user;
    }

    [Fact]
    public async Task A_latin1_user_agent_gets_the_gif_and_the_redirect_and_is_recorded_as_latin1()
    {
        var user = await NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var pixel = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        var link = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!);
        byte[] latin1 = [.. "Mozilla/5.0 (Windows; U; Windows NT 5.1; fr) Thunderbird/2.0 caf"u8, 0xE9];
        byte[] utf8 = [.. "Mozilla/5.0 (Windows NT 10.0) Thunderbird/115.0 caf"u8, 0xC3, 0xA9];

        var open = await RawAsync(pixel, latin1);
        Assert.StartsWith("HTTP/1.1 200", open);
        Assert.Contains("image/gif", open);
        Assert.Contains("GIF89a", open);
        var click = await RawAsync(link, latin1);
        Assert.StartsWith("HTTP/1.1 302", click);
        Assert.Contains("Location: https://example.com/pricing", click);
        // Valid UTF-8 is still read as UTF-8.
        Assert.StartsWith("HTTP/1.1 200", await RawAsync(pixel, utf8));

        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        var events = app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TrackedMessageId == id).OrderBy(e => e.Id).ToList());
        Assert.Equal([(EventKind.Open, "Mozilla/5.0 (Windows; U; Windows NT 5.1; fr) Thunderbird/2.0 café"),
            (EventKind.Click, "Mozilla/5.0 (Windows; U; Windows NT 5.1; fr) Thunderbird/2.0 café"),
            (EventKind.Open, "Mozilla/5.0 (Windows NT 10.0) Thunderbird/115.0 café")], events.Select(e => (e.Kind, e.UserAgent!)));
    }

    [Fact]
    public async Task A_nul_byte_in_a_header_is_still_refused()
    {
        var user = await NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var pixel = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        Assert.StartsWith("HTTP/1.1 400", await RawAsync(pixel, [.. "Thunderbird/2.0 caf"u8, 0xE9, 0x00, .. "x"u8]));
        Assert.StartsWith("HTTP/1.1 400", await RawAsync(pixel, [.. "Thunderbird/2.0"u8, 0x00]));
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        Assert.Equal(0, app.WithDb(db => db.Events.Count(e => e.TrackedMessageId == id)));
    }

    [Theory]
    [InlineData(new byte[] { 0x61, 0x62 }, "ab")]
    [InlineData(new byte[] { 0x63, 0x61, 0x66, 0xC3, 0xA9 }, "café")]
    [InlineData(new byte[] { 0x63, 0x61, 0x66, 0xE9 }, "café")]
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98, 0x80, 0xFF }, "\u00F0\u009F\u0098\u0080\u00FF")]
    [InlineData(new byte[] { }, "")]
    public void Header_values_are_utf8_or_else_latin1(byte[] bytes, string text)
    {
        Assert.Equal(text, RequestHeaderEncoding.Instance.GetString(bytes.AsSpan()));
        Assert.Equal(text, RequestHeaderEncoding.Instance.GetString(bytes));
    }
}
