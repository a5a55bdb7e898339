using System.Net.Sockets;
using System.Text;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// A TCP proxy in front of the test IMAP server that refuses to send one message, as Exchange does with a message it
/// cannot convert to RFC 822: a UID FETCH of that INBOX message's body is not passed on, and the client gets a tagged NO.
/// Everything else goes through unchanged. Plain IMAP only.
/// </summary>
/// <param name="code">A response code to give the NO (<c>UNAVAILABLE</c>: a refusal for now, RFC 5530), with
/// <see cref="Busy"/> as its text; none by default, with Exchange's <see cref="Refusal"/>.</param>
/// <param name="times">How many body fetches are refused; those after it are passed on. All of them by default.</param>
public sealed class ImapRefusingProxy(string host, int port, uint uid, string? code = null, int times = int.MaxValue) : ImapProxy(host, port)
{
    /// <summary>What Exchange answers for such a message.</summary>
    public const string Refusal = "The requested message could not be converted to an RFC-822 compatible format.";

    /// <summary>The text of a refusal with a <c>code</c>, as a server with a part of its store down might say it.</summary>
    public const string Busy = "The message store is not reachable at the moment, try again later.";

    int refusals;
    int fetches;

    /// <summary>How many body fetches of the message (<c>uid</c>, in INBOX) were refused.</summary>
    public int Refusals => Volatile.Read(ref refusals);

    /// <summary>How many body fetches of the message were asked for, refused or passed on.</summary>
    public int Fetches => Volatile.Read(ref fetches);

    protected override async Task RelayAsync(NetworkStream toClient, NetworkStream toServer)
    {
        // The client hears from the server and from the proxy: one writer at a time.
        using var writing = new SemaphoreSlim(1, 1);
        async Task TellClientAsync(byte[] bytes, int count)
        {
            await writing.WaitAsync(Stop.Token);
            try
            {
                await toClient.WriteAsync(bytes.AsMemory(0, count), Stop.Token);
            }
            finally
            {
                writing.Release();
            }
        }
        var up = Task.Run(async () =>
        {
            // Client to server, line by line (a literal's lines pass on unread as commands, harmlessly): a body
            // fetch of the message ("<tag> UID FETCH <uid> (BODY.PEEK[])") while INBOX is open is answered NO.
            var buffer = new byte[16384];
            var line = new List<byte>();
            var inbox = false;
            int n;
            while ((n = await toClient.ReadAsync(buffer, Stop.Token)) > 0)
            {
                for (var i = 0; i < n; i++)
                {
                    var b = buffer[i];
                    line.Add(b);
                    if (b != '\n') continue;
                    var bytes = line.ToArray();
                    line.Clear();
                    var parts = Encoding.ASCII.GetString(bytes).TrimEnd().Split(' ', 4);
                    if (parts.Length >= 3 && (parts[1].Equals("SELECT", StringComparison.OrdinalIgnoreCase) || parts[1].Equals("EXAMINE", StringComparison.OrdinalIgnoreCase)))
                    {
                        inbox = parts[2].Trim('"').Equals("INBOX", StringComparison.OrdinalIgnoreCase);
                    }
                    if (inbox && parts.Length == 4 && parts[1].Equals("UID", StringComparison.OrdinalIgnoreCase) && parts[2].Equals("FETCH", StringComparison.OrdinalIgnoreCase)
                        && parts[3].StartsWith($"{uid} ", StringComparison.Ordinal) && parts[3].Contains("BODY.PEEK[]", StringComparison.OrdinalIgnoreCase)
                        && Interlocked.Increment(ref fetches) <= times)
                    {
                        Interlocked.Increment(ref refusals);
                        var no = Encoding.ASCII.GetBytes(code is null ? $"{parts[0]} NO {Refusal}\r\n" : $"{parts[0]} NO [{code}] {Busy}\r\n");
                        await TellClientAsync(no, no.Length);
                        continue;
                    }
                    await toServer.WriteAsync(bytes, Stop.Token);
                }
            }
        });
        var down = Task.Run(async () =>
        {
            var buffer = new byte[16384];
            int n;
            while ((n = await toServer.ReadAsync(buffer, Stop.Token)) > 0) await TellClientAsync(buffer, n);
        });
        await Task.WhenAny(up, down);
    }
}
