using System.Net.Sockets;
using System.Text;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in front of the test SMTP server (the relay of <see cref="ImapProxy"/> is plain TCP) that stops a send at
/// an exact moment: before a recipient is passed on, before the end of the mail's DATA is passed on (the server does
/// not have the mail yet), or once the server has accepted the mail (its reply to the end of DATA), when that reply is
/// never passed on and the connection closes, as a dropped connection or a crashed client would leave it. Each hook
/// runs once. Plain SMTP, with DATA (MailKit's choice for mail without binary parts), only.
/// </summary>
public sealed class SmtpFaultProxy(string host, int port) : ImapProxy(host, port)
{
    Func<Task>? beforeRecipient;
    Func<Task>? beforeEndOfData;
    Action? onAccepted;

    /// <summary>Awaited before the next RCPT TO is passed on to the server.</summary>
    public void BeforeRecipient(Func<Task> hook) => beforeRecipient = hook;

    /// <summary>Awaited before the next end of DATA (the lone dot) is passed on: the mail has not reached the server.</summary>
    public void BeforeEndOfData(Func<Task> hook) => beforeEndOfData = hook;

    /// <summary>When the server next accepts a mail: called, and the server's 250 is held back while the connection closes.</summary>
    public void OnAccepted(Action hook) => onAccepted = hook;

    protected override async Task RelayAsync(NetworkStream fromClient, NetworkStream fromServer)
    {
        // Set once the client has sent the end of a DATA: the server's next reply is its answer to the mail.
        var awaitingDataReply = 0;
        var up = Task.Run(async () =>
        {
            var inData = false;
            await foreach (var line in LinesAsync(fromClient))
            {
                var text = Encoding.ASCII.GetString(line).TrimEnd('\r', '\n');
                if (!inData && text.StartsWith("RCPT TO", StringComparison.OrdinalIgnoreCase) && Interlocked.Exchange(ref beforeRecipient, null) is { } recipient)
                    await recipient();
                if (!inData && text.Equals("DATA", StringComparison.OrdinalIgnoreCase)) inData = true;
                else if (inData && text == ".")
                {
                    inData = false;
                    if (Interlocked.Exchange(ref beforeEndOfData, null) is { } end) await end();
                    Volatile.Write(ref awaitingDataReply, 1);
                }
                await fromServer.WriteAsync(line, Stop.Token);
            }
        });
        var down = Task.Run(async () =>
        {
            await foreach (var line in LinesAsync(fromServer))
            {
                var text = Encoding.ASCII.GetString(line);
                // The last line of the reply to the mail (a multi-line reply's lines but the last have a '-' after the code).
                if (text.Length >= 4 && text[3] == ' ' && Interlocked.Exchange(ref awaitingDataReply, 0) == 1
                    && text.StartsWith("250", StringComparison.Ordinal) && Interlocked.Exchange(ref onAccepted, null) is { } accepted)
                {
                    accepted();
                    return;
                }
                await fromClient.WriteAsync(line, Stop.Token);
            }
        });
        await Task.WhenAny(up, down);
    }

    /// <summary>The stream's lines, each with its line end, until the other side closes.</summary>
    async IAsyncEnumerable<byte[]> LinesAsync(NetworkStream stream)
    {
        var buffer = new byte[16384];
        var pending = new List<byte>();
        int n;
        while ((n = await stream.ReadAsync(buffer, Stop.Token)) > 0)
        {
            pending.AddRange(buffer.AsSpan(0, n));
            int nl;
            while ((nl = pending.IndexOf((byte)'\n')) >= 0)
            {
                var line = pending.GetRange(0, nl + 1).ToArray();
                pending.RemoveRange(0, nl + 1);
                yield return line;
            }
        }
    }
}
