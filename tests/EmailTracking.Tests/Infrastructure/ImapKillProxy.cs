using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in front of the test IMAP server that can stand for a crash at an exact moment: once armed, when the
/// IMAP server answers OK to an APPEND (the sent mail is now stored in the Sent folder), the proxy calls the given
/// action — the test kills the product's server there — before that answer is passed on. Plain IMAP only.
/// </summary>
public sealed class ImapKillProxy : IAsyncDisposable
{
    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly string host;
    readonly int port;
    readonly CancellationTokenSource stop = new();
    readonly Task accepting;
    Action? onAppendStored;

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;
    public int AppendsSeen { get; private set; }

    public ImapKillProxy(string host, int port)
    {
        this.host = host;
        this.port = port;
        listener.Start();
        accepting = AcceptAsync();
    }

    /// <summary>The next stored APPEND calls this (once); its OK is never passed on.</summary>
    public void Arm(Action onStored) => onAppendStored = onStored;

    async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    async Task RelayAsync(TcpClient client)
    {
        using var c = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(host, port, stop.Token);
            var fromClient = client.GetStream();
            var fromServer = server.GetStream();
            var appendTags = new HashSet<string>();
            var up = Task.Run(async () =>
            {
                // Client to server: pass bytes on; note the tags of APPEND commands (lines start "<tag> APPEND ").
                var buffer = new byte[16384];
                var line = new StringBuilder();
                int n;
                while ((n = await fromClient.ReadAsync(buffer, stop.Token)) > 0)
                {
                    foreach (var b in buffer.AsSpan(0, n))
                    {
                        if (b == '\n')
                        {
                            var text = line.ToString();
                            var parts = text.Split(' ', 3);
                            if (parts.Length >= 2 && parts[1].Equals("APPEND", StringComparison.OrdinalIgnoreCase)) lock (appendTags) appendTags.Add(parts[0]);
                            line.Clear();
                        }
                        else if (line.Length < 4096)
                        {
                            line.Append((char)b);
                        }
                    }
                    await fromServer.WriteAsync(buffer.AsMemory(0, n), stop.Token);
                }
            });
            var down = Task.Run(async () =>
            {
                // Server to client, line by line so that an APPEND's tagged OK can be held back.
                var buffer = new byte[16384];
                var pending = new List<byte>();
                int n;
                while ((n = await fromServer.ReadAsync(buffer, stop.Token)) > 0)
                {
                    pending.AddRange(buffer.AsSpan(0, n).ToArray());
                    int nl;
                    while ((nl = pending.IndexOf((byte)'\n')) >= 0)
                    {
                        var chunk = pending.GetRange(0, nl + 1).ToArray();
                        pending.RemoveRange(0, nl + 1);
                        var text = Encoding.ASCII.GetString(chunk);
                        var parts = text.Split(' ', 3);
                        bool isAppendOk;
                        lock (appendTags) isAppendOk = parts.Length >= 2 && appendTags.Contains(parts[0]) && parts[1].Equals("OK", StringComparison.OrdinalIgnoreCase);
                        if (isAppendOk)
                        {
                            AppendsSeen++;
                            if (Interlocked.Exchange(ref onAppendStored, null) is { } crash)
                            {
                                crash();
                                return;
                            }
                        }
                        await fromClient.WriteAsync(chunk, stop.Token);
                    }
                }
            });
            await Task.WhenAny(up, down);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A side closed (or the process on it was killed): the relay ends.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        try { await accepting; } catch (OperationCanceledException) { }
        stop.Dispose();
    }
}
