using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>The server as shipped (Mailboxes:AllowPrivateHosts off), with host names resolved by the test.</summary>
public sealed class PublicMailHostsApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public static readonly Dictionary<string, IPAddress[]> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["mail.metadata.test"] = [IPAddress.Parse("169.254.169.254")],
        ["mail.lan.test"] = [IPAddress.Parse("10.1.2.3"), IPAddress.Parse("fd00::25")],
        ["mail.loopback.test"] = [IPAddress.Loopback, IPAddress.IPv6Loopback],
        // A public address (TEST-NET-3: nothing answers there) and this machine: only the first may be tried.
        ["mail.mixed.test"] = [IPAddress.Parse("203.0.113.25"), IPAddress.Loopback],
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Mailboxes:AllowPrivateHosts", "false");
        builder.UseSetting("Mailboxes:Timeout", "00:00:03");
        builder.ConfigureServices(s => s.PostConfigure<MailboxOptions>(o => o.Resolve = (host, _) =>
            Names.TryGetValue(host, out var found) ? Task.FromResult(found) : throw new SocketException((int)SocketError.HostNotFound)));
    }
}

/// <summary>
/// A mailbox's servers are typed by users: unless the administrator allows it, none of them may make this server
/// connect to its own machine, its network or a cloud metadata address, whether typed as an address or as a name
/// that resolves there.
/// </summary>
public sealed class MailboxHostsTests(PublicMailHostsApp app) : IClassFixture<PublicMailHostsApp>
{
    static async Task<JsonElement> ConnectAsync(TestUser user, string imapHost, int imapPort, HttpStatusCode expected)
    {
        var res = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address = user.Email, username = "me", password = "secret",
            imap = new { host = imapHost, port = imapPort, security = "none" }, smtp = new { host = imapHost, port = imapPort, security = "none" },
        }, TestApi.Json);
        Assert.Equal(expected, res.StatusCode);
        return JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("mail.loopback.test", "127.0.0.1, ::1")]
    [InlineData("mail.metadata.test", "169.254.169.254")]
    [InlineData("mail.lan.test", "10.1.2.3, fd00::25")]
    public async Task A_server_on_a_private_or_local_address_is_refused_before_any_connection_and_nothing_is_stored(string host, string addresses)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var user = await app.NewUserAsync();

        var problem = await ConnectAsync(user, host, port, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("The mailbox could not be connected.", problem.GetProperty("title").GetString());
        Assert.Contains($"The IMAP server {host}:{port} is on a private or local address ({addresses})", problem.GetProperty("detail").GetString());
        Assert.Contains("Mailboxes:AllowPrivateHosts", problem.GetProperty("detail").GetString());
        Assert.False(listener.Pending(), "something connected to this machine");
        Assert.Empty((await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());
    }

    [Fact]
    public async Task A_name_with_public_and_private_addresses_is_tried_only_at_the_public_one()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var user = await app.NewUserAsync();

        var problem = await ConnectAsync(user, "mail.mixed.test", port, HttpStatusCode.UnprocessableEntity);
        Assert.Contains($"IMAP server mail.mixed.test:{port}", problem.GetProperty("detail").GetString());
        Assert.DoesNotContain("private or local", problem.GetProperty("detail").GetString());
        Assert.False(listener.Pending(), "the loopback address was tried");
    }

    [Fact]
    public async Task A_stored_mailbox_whose_smtp_server_now_resolves_to_this_machine_needs_reconnecting_and_sends_nothing()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var user = await app.NewUserAsync();
        var secrets = app.Services.GetRequiredService<MailboxSecrets>();
        var endpoint = new ServerEndpoint("mail.loopback.test", port, MailSecurity.None);
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, CreatedAt = DateTimeOffset.UtcNow,
            // Active, as sending needs (the watch that picks it up meanwhile is refused the same way).
            Status = MailboxStatus.Active,
            ProtectedSecret = secrets.Protect(new ImapSmtpSecret(endpoint, endpoint, "me", "secret")),
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });

        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            mailboxId = mailbox.Id, subject = "Hi", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadGateway, send.StatusCode);
        Assert.Contains("private or local address (127.0.0.1, ::1)", await send.Content.ReadAsStringAsync());
        var row = app.WithDb(db => db.Mailboxes.Single(m => m.Id == mailbox.Id));
        Assert.Equal(MailboxStatus.NeedsReconnect, row.Status);
        Assert.Contains("private or local address", row.StatusMessage);
        Assert.False(listener.Pending(), "something connected to this machine");
        Assert.Empty(app.WithDb(db => db.Messages.Where(m => m.UserId == user.Id).ToList()));
    }
}
