using System.Net;
using System.Net.Sockets;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using MailKit;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// A user may point their mailbox at any server, theirs included. What such a server sends in answer to one command is
/// limited (<see cref="ReplyLimitStream"/>): a message announced small and sent as gigabytes, or a line that never
/// ends, closes the connection with a clear problem instead of filling this server's memory.
/// </summary>
public sealed class HostileMailServerTests
{
    const long MaxMessage = 1024 * 1024;
    const long Flood = 256L * 1024 * 1024;

    static readonly MailboxOptions Options = new() { AllowPrivateHosts = true, MaxMessageBytes = MaxMessage, Timeout = TimeSpan.FromSeconds(20) };

    /// <summary>
    /// A fake IMAP server: greets, takes any login, selects INBOX with one message, and answers the given command with
    /// <paramref name="flood"/> (up to <see cref="Flood"/> bytes, until the client hangs up). Answers the bytes it got out.
    /// </summary>
    static async Task<(long Sent, Exception? Client)> AgainstAsync(string floodOn, Func<string, byte[]> head, byte filler)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(async () =>
        {
            using var tcp = await listener.AcceptTcpClientAsync();
            var stream = tcp.GetStream();
            var reader = new StreamReader(stream, Encoding.ASCII);
            async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"));
            await Say("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready");
            long sent = 0;
            while (await reader.ReadLineAsync() is { } line)
            {
                var tag = line.Split(' ')[0];
                var command = line.Split(' ').ElementAtOrDefault(1)?.ToUpperInvariant() ?? "";
                if (command == floodOn || (floodOn == "UID FETCH" && command == "UID" && line.Contains(" FETCH ", StringComparison.OrdinalIgnoreCase)))
                {
                    var start = head(tag);
                    await stream.WriteAsync(start);
                    sent += start.Length;
                    var chunk = new byte[64 * 1024];
                    Array.Fill(chunk, filler);
                    try
                    {
                        while (sent < Flood)
                        {
                            await stream.WriteAsync(chunk);
                            sent += chunk.Length;
                        }
                    }
                    catch (IOException)
                    {
                        // The client hung up.
                    }
                    return sent;
                }
                switch (command)
                {
                    case "CAPABILITY": await Say("* CAPABILITY IMAP4rev1 AUTH=PLAIN UIDPLUS"); await Say($"{tag} OK done"); break;
                    case "LOGIN": case "AUTHENTICATE": await Say($"{tag} OK [CAPABILITY IMAP4rev1 UIDPLUS] logged in"); break;
                    case "SELECT": case "EXAMINE":
                        await Say("* 1 EXISTS"); await Say("* OK [UIDVALIDITY 7] ok"); await Say("* OK [UIDNEXT 2] ok");
                        await Say($"{tag} OK [READ-ONLY] selected"); break;
                    case "LOGOUT": await Say("* BYE"); await Say($"{tag} OK bye"); return sent;
                    default: await Say($"{tag} OK done"); break;
                }
            }
            return sent;
        });
        Exception? failure = null;
        try
        {
            var secret = new ImapSmtpSecret(new ServerEndpoint("127.0.0.1", port, MailSecurity.None), new ServerEndpoint("127.0.0.1", port, MailSecurity.None), "me", "secret");
            using var client = await MailConnect.ImapAsync(secret, Options, CancellationToken.None);
            var inbox = client.Inbox;
            await inbox.OpenAsync(FolderAccess.ReadOnly);
            using var message = await inbox.GetMessageAsync(new UniqueId(1));
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        var sentOut = await server.WaitAsync(TimeSpan.FromSeconds(60));
        return (sentOut, failure);
    }

    [Fact]
    public async Task A_message_announced_small_and_sent_without_end_closes_the_connection_near_the_limit()
    {
        // RFC822.SIZE would have said 1 KB; the literal says 2 GB and keeps coming.
        var (sent, failure) = await AgainstAsync("UID FETCH", _ => Encoding.ASCII.GetBytes("* 1 FETCH (UID 1 BODY[] {2000000000}\r\n"), (byte)'x');
        var io = Assert.IsAssignableFrom<IOException>(failure is MailboxException m ? m.InnerException ?? m : failure);
        Assert.Contains("in answer to one command", io.Message);
        Assert.True(sent < MaxMessage + MailConnect.ImapReplySlack + 32 * 1024 * 1024, $"the server got {sent:N0} bytes out before the client hung up");
    }

    [Fact]
    public async Task A_response_line_that_never_ends_closes_the_connection_near_the_limit()
    {
        var (sent, failure) = await AgainstAsync("UID FETCH", _ => Encoding.ASCII.GetBytes("* 1 FETCH (UID 1 X-JUNK \""), (byte)'y');
        Assert.NotNull(failure);
        Assert.Contains("in answer to one command", (failure.InnerException ?? failure).Message);
        Assert.True(sent < MaxMessage + MailConnect.ImapReplySlack + 32 * 1024 * 1024, $"the server got {sent:N0} bytes out before the client hung up");
    }

    [Fact]
    public void The_limit_starts_again_with_each_command_and_is_not_crossed_within_one()
    {
        var inner = new MemoryStream(new byte[100]);
        var limited = new ReplyLimitStream(inner, 30);
        var buffer = new byte[64];
        Assert.Equal(30, limited.Read(buffer, 0, 64));
        Assert.Throws<ReplyTooLargeException>(() => limited.Read(buffer, 0, 64));
        limited.Write([1]);
        // The write went to the inner stream (at its position) and the next answer may be 30 bytes again.
        Assert.Equal(30, limited.Read(buffer, 0, 64));
    }
}
