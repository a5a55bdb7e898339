using System.Net;
using System.Net.Sockets;
using EmailTracking.Server.Salesforce;
using EmailTracking.Tests.Outbox;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Salesforce;

/// <summary>
/// The Salesforce client sends the org's access token and people's data: it connects only to public addresses (and to
/// loopback when the login URL is on loopback, a local stand-in), checked on the address actually connected to, so an
/// instance URL whose name resolves to a private address is refused although no URL check could see it.
/// </summary>
public sealed class SalesforceAddressTests(SalesforceSqliteApp app) : IClassFixture<SalesforceSqliteApp>
{
    /// <summary>A resolver that knows two names: one on the internal network, one on this machine.</summary>
    static Task<IPAddress[]> Resolve(string host, CancellationToken ct) => Task.FromResult(host switch
    {
        "crm.internal.test" => new[] { IPAddress.Parse("10.0.0.5") },
        "crm.metadata.test" => [IPAddress.Parse("169.254.169.254")],
        "standin.test" => [IPAddress.Loopback],
        _ => throw new SocketException((int)SocketError.HostNotFound),
    });

    [Theory]
    [InlineData("crm.internal.test", false)]
    [InlineData("crm.internal.test", true)]
    [InlineData("crm.metadata.test", true)]
    [InlineData("standin.test", false)]
    [InlineData("10.1.2.3", true)]
    public async Task A_name_or_address_that_is_not_public_is_refused_at_the_connection(string host, bool loginIsLoopback)
    {
        var context = new SocketsHttpConnectionContextFake(host, 443).Context;
        var ex = await Assert.ThrowsAsync<HttpRequestException>(async () =>
            await SalesforceAuth.ConnectAsync(context, loginIsLoopback, Resolve, CancellationToken.None));
        Assert.Contains("no public address", ex.Message);
    }

    [Fact]
    public async Task Loopback_is_reached_only_when_the_login_url_is_on_loopback()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var context = new SocketsHttpConnectionContextFake("standin.test", port).Context;
        await using (var stream = await SalesforceAuth.ConnectAsync(context, loginIsLoopback: true, Resolve, CancellationToken.None))
        {
            Assert.True(stream.CanWrite);
        }
        Assert.True(SalesforceAuth.MayConnectTo(IPAddress.Parse("13.108.0.1"), loginIsLoopback: false));
        Assert.False(SalesforceAuth.MayConnectTo(IPAddress.Loopback, loginIsLoopback: false));
    }

    [Fact]
    public async Task The_servers_Salesforce_client_goes_through_the_check()
    {
        // The test server's login URL is on loopback (the fake), so loopback is allowed; a private address is not.
        using var http = app.Services.GetRequiredService<IHttpClientFactory>().CreateClient(SalesforceAuth.HttpClientName);
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("https://10.0.0.5/services/data/"));
        Assert.Contains("no public address", ex.Message);
    }
}
