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
        // This machine and a public address (TEST-NET-3: nothing answers there): only the second may be tried.
        ["mail.mixed.test"] = [IPAddress.Loopback, IPAddress.Parse("203.0.113.25")],
    };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Mailboxes:AllowPrivateHosts", "false");
        // No watch: a stored mailbox's state is what the tests' own requests make it.
        builder.UseSetting("Mailboxes:Watch", "false");
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
    [InlineData("127.0.0.1", "is a private or local address")]
    [InlineData("::1", "is a private or local address")]
    [InlineData("64:ff9b::a9fe:a9fe", "is a private or local address")] // NAT64 to the metadata address
    [InlineData("mail.loopback.test", "resolves only to private or local addresses")]
    [InlineData("mail.metadata.test", "resolves only to private or local addresses")]
    [InlineData("mail.lan.test", "resolves only to private or local addresses")]
    public async Task A_server_on_a_private_or_local_address_is_refused_before_any_connection_and_nothing_is_stored(string host, string why)
    {
        using var listener = new TcpListener(IPAddress.IPv6Any, 0) { Server = { DualMode = true } };
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var user = await app.NewUserAsync();

        var problem = await ConnectAsync(user, host, port, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("The mailbox could not be connected.", problem.GetProperty("title").GetString());
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains($"The IMAP server {host}:{port} {why}", detail);
        Assert.Contains("Mailboxes:AllowPrivateHosts", detail);
        // What an internal name resolves to is not told.
        if (PublicMailHostsApp.Names.TryGetValue(host, out var answers)) Assert.All(answers, a => Assert.DoesNotContain(a.ToString(), detail));
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

    /// <summary>
    /// A stored mailbox's SMTP server typed as a private address needs reconnecting; one whose name now resolves there
    /// (DNS changed, or a filter answering 0.0.0.0 for a while) is only refused this time. Either way nothing is sent.
    /// </summary>
    [Theory]
    [InlineData("127.0.0.1", "is a private or local address", MailboxStatus.NeedsReconnect)]
    [InlineData("mail.loopback.test", "resolves only to private or local addresses", MailboxStatus.Active)]
    public async Task A_stored_mailbox_whose_smtp_server_is_on_this_machine_sends_nothing(string host, string why, MailboxStatus after)
    {
        using var listener = new TcpListener(IPAddress.IPv6Any, 0) { Server = { DualMode = true } };
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var user = await app.NewUserAsync();
        var secrets = app.Services.GetRequiredService<MailboxSecrets>();
        var endpoint = new ServerEndpoint(host, port, MailSecurity.None);
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, CreatedAt = DateTimeOffset.UtcNow,
            Status = MailboxStatus.Active,
            ProtectedSecret = secrets.Protect(new ImapSmtpSecret(endpoint, endpoint, "me", "secret")),
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });

        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            mailboxId = mailbox.Id, subject = "Hi", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadGateway, send.StatusCode);
        Assert.Contains($"SMTP server {host}:{port} {why}", await send.Content.ReadAsStringAsync());
        var row = app.WithDb(db => db.Mailboxes.Single(m => m.Id == mailbox.Id));
        Assert.Equal(after, row.Status);
        Assert.False(listener.Pending(), "something connected to this machine");
        Assert.Empty(app.WithDb(db => db.Messages.Where(m => m.UserId == user.Id).ToList()));
    }
}
