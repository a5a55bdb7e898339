using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MimeKit;

namespace EmailTracking.Tests.Fakes;

/// <summary>
/// A mail relay on a loopback port speaking just enough SMTP (RFC 5321: EHLO, MAIL, RCPT, DATA with dot-stuffing, QUIT;
/// no TLS, no login) for the server's own mail (`Mail:Smtp`) to be sent through MailKit for real. It keeps what it is
/// given; <see cref="Refuse"/> makes it answer 554 to the message instead, <see cref="Defer"/> 451 (try again later) to
/// the next messages for an address, and <see cref="DropConnections"/> closes the next connections unanswered.
/// </summary>
public sealed class FakeSmtpRelay : IDisposable
{
    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource stop = new();

    public sealed record Received(string MailFrom, List<string> RcptTo, MimeMessage Message);

    public ConcurrentQueue<Received> Messages { get; } = new();
    public volatile bool Refuse;
    /// <summary>The recipients of each message refused (<see cref="Refuse"/>).</summary>
    public ConcurrentQueue<List<string>> RefusedTo { get; } = new();
    /// <summary>The recipients of each message answered 451 (<see cref="Defer"/>).</summary>
    public ConcurrentQueue<List<string>> DeferredTo { get; } = new();
    readonly ConcurrentDictionary<string, int> deferrals = new(StringComparer.OrdinalIgnoreCase);
    int drops;
    int dropped;
    volatile TaskCompletionSource? hold;
    int waiting;
    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    public FakeSmtpRelay()
    {
        listener.Start();
        _ = AcceptAsync();
    }

    /// <summary>A slow relay: from now on a connection waits before the relay's greeting, until <see cref="Release"/>.</summary>
    public void Hold() => hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release()
    {
        var h = hold;
        hold = null;
        h?.TrySetResult();
    }

    /// <summary>The next <paramref name="times"/> messages for <paramref name="address"/> are answered 451, a refusal for now.</summary>
    public void Defer(string address, int times) => deferrals[address] = times;

    /// <summary>The next <paramref name="count"/> connections are closed before the relay's greeting.</summary>
    public void DropConnections(int count) => Volatile.Write(ref drops, count);

    /// <summary>How many connections were closed unanswered (<see cref="DropConnections"/>).</summary>
    public int Dropped => Volatile.Read(ref dropped);

    /// <summary>How many connections are waiting on <see cref="Hold"/>.</summary>
    public int Waiting => Volatile.Read(ref waiting);

    /// <summary>The messages sent to <paramref name="address"/>, oldest first.</summary>
    public List<MimeMessage> To(string address) =>
        [.. Messages.Where(m => m.RcptTo.Contains(address, StringComparer.OrdinalIgnoreCase)).Select(m => m.Message)];

    /// <summary>
    /// The <paramref name="count"/>th message sent to <paramref name="address"/> (or, without a count, the latest once
    /// one has come), waiting up to 15 seconds for it: the server's mail goes out in the background.
    /// </summary>
    public async Task<MimeMessage> MailAsync(string address, int? count = null)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (To(address).Count < (count ?? 1))
        {
            Xunit.Assert.True(DateTime.UtcNow < until, $"no mail {count ?? 1} reached {address}");
            await Task.Delay(50);
        }
        var mails = To(address);
        return count is { } n ? mails[n - 1] : mails[^1];
    }

    async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception) { return; }
            _ = ServeAsync(client);
        }
    }

    async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var reader = new StreamReader(stream, Encoding.Latin1);
        var writer = new StreamWriter(stream, Encoding.Latin1) { NewLine = "\r\n", AutoFlush = true };
        try
        {
            if (hold is { } h)
            {
                Interlocked.Increment(ref waiting);
                try { await h.Task.WaitAsync(stop.Token); }
                finally { Interlocked.Decrement(ref waiting); }
            }
            if (Interlocked.Decrement(ref drops) >= 0)
            {
                Interlocked.Increment(ref dropped);
                return;
            }
            Interlocked.Increment(ref drops);
            await writer.WriteLineAsync("220 fake-relay ESMTP");
            string? from = null;
            var rcpt = new List<string>();
            while (await reader.ReadLineAsync(stop.Token) is { } line)
            {
                var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await writer.WriteLineAsync("250-fake-relay\r\n250-8BITMIME\r\n250 SMTPUTF8");
                        break;
                    case "HELO" or "NOOP" or "RSET":
                        if (verb == "RSET") { from = null; rcpt.Clear(); }
                        await writer.WriteLineAsync("250 OK");
                        break;
                    case "MAIL":
                        from = Path(line);
                        await writer.WriteLineAsync("250 OK");
                        break;
                    case "RCPT":
                        rcpt.Add(Path(line));
                        await writer.WriteLineAsync("250 OK");
                        break;
                    case "DATA":
                        await writer.WriteLineAsync("354 go ahead");
                        var data = new StringBuilder();
                        while (await reader.ReadLineAsync(stop.Token) is { } d && d != ".") data.Append(d.StartsWith('.') ? d[1..] : d).Append("\r\n");
                        var deferred = rcpt.FirstOrDefault(r => deferrals.TryGetValue(r, out var n) && n > 0);
                        if (deferred is not null)
                        {
                            deferrals.AddOrUpdate(deferred, 0, (_, n) => n - 1);
                            DeferredTo.Enqueue([.. rcpt]);
                            await writer.WriteLineAsync("451 4.3.0 try again later, for the test");
                        }
                        else if (Refuse)
                        {
                            RefusedTo.Enqueue([.. rcpt]);
                            await writer.WriteLineAsync("554 5.7.1 relay refused for the test");
                        }
                        else
                        {
                            var message = await MimeMessage.LoadAsync(new MemoryStream(Encoding.Latin1.GetBytes(data.ToString())));
                            Messages.Enqueue(new Received(from ?? "", [.. rcpt], message));
                            await writer.WriteLineAsync("250 OK queued");
                        }
                        from = null;
                        rcpt.Clear();
                        break;
                    case "QUIT":
                        await writer.WriteLineAsync("221 bye");
                        return;
                    default:
                        await writer.WriteLineAsync("502 not implemented");
                        break;
                }
            }
        }
        catch (Exception) when (stop.IsCancellationRequested) { }
        catch (IOException) { }
    }

    static string Path(string line)
    {
        var start = line.IndexOf('<');
        var end = line.IndexOf('>', start + 1);
        return start >= 0 && end > start ? line[(start + 1)..end] : "";
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
    }
}
