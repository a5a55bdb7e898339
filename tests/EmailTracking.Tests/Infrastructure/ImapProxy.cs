using System.Net;
using System.Net.Sockets;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in front of the test IMAP server, for tests that need the server to do what Dovecot will not at a
/// given moment: each client connection gets a connection of its own to the server, and <see cref="RelayAsync"/>
/// passes (or changes) what goes between them. Plain IMAP only.
/// </summary>
public abstract class ImapProxy : IAsyncDisposable
{
    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly string host;
    readonly int port;
    readonly Task accepting;

    /// <summary>Cancelled when the proxy is disposed: relays pass it to their reads and writes.</summary>
    protected CancellationTokenSource Stop { get; } = new();

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    protected ImapProxy(string host, int port)
    {
        this.host = host;
        this.port = port;
        listener.Start();
        accepting = AcceptAsync();
    }

    /// <summary>What goes between one client and its server connection, until either side closes.</summary>
    protected abstract Task RelayAsync(NetworkStream toClient, NetworkStream toServer);

    async Task AcceptAsync()
    {
        while (!Stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(Stop.Token);
            }
            catch (Exception) when (Stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => ConnectAsync(client));
        }
    }

    async Task ConnectAsync(TcpClient client)
    {
        using var c = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(host, port, Stop.Token);
            await RelayAsync(client.GetStream(), server.GetStream());
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A side closed (or the process on it was killed): the relay ends.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Stop.CancelAsync();
        listener.Stop();
        try { await accepting; } catch (OperationCanceledException) { }
        Stop.Dispose();
        GC.SuppressFinalize(this);
    }
}
