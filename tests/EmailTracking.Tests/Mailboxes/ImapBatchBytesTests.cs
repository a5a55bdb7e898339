using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// The IMAP watch reads messages in batches bounded in bytes, and holds a batch's messages in memory until it has
/// handled them. What bounds a batch is what the server sent, not what it announced: a server a user named that says
/// each message is small (RFC822.SIZE) and sends each as large as one command allows would otherwise have a batch of
/// a hundred hold gigabytes.
/// </summary>
public sealed class ImapBatchBytesTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const int Messages = 5;
    const int ActualBytes = 6 * 1024 * 1024;

    [Fact]
    public async Task Messages_announced_small_and_sent_large_do_not_all_wait_in_one_batch()
    {
        var user = await app.NewUserAsync();
        var connectionId = Guid.NewGuid();
        // For each message the server was asked for: its UID, and the last UID the watch had handled by then.
        var asked = new ConcurrentQueue<(uint Uid, uint Handled)>();
        uint Handled() => app.WithDb(db => db.MailboxCursors.Where(c => c.ConnectionId == connectionId && c.Name == ImapWatch.InboxCursor)
            .Select(c => c.Value).FirstOrDefault()) is { } v ? uint.Parse(v.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) : 0;

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient tcp;
                try
                {
                    tcp = await listener.AcceptTcpClientAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                _ = Task.Run(() => ServeAsync(tcp, uid => asked.Enqueue((uid, Handled())), stop.Token));
            }
        });
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var secrets = app.Services.GetRequiredService<MailboxSecrets>();
            var endpoint = new ServerEndpoint("127.0.0.1", port, MailSecurity.None);
            await app.WithDbAsync(async db =>
            {
                db.Mailboxes.Add(new MailboxConnection
                {
                    Id = connectionId, TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email,
                    ProtectedSecret = secrets.Protect(new ImapSmtpSecret(endpoint, endpoint, "me", "secret")), CreatedAt = DateTimeOffset.UtcNow,
                });
                await db.SaveChangesAsync();
            });
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (Handled() < Messages)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the watch handled up to UID {Handled()}; asked for {string.Join(", ", asked)}");
                await Task.Delay(200);
            }
        }
        finally
        {
            await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == connectionId).ExecuteDeleteAsync());
            await stop.CancelAsync();
            listener.Stop();
            await server;
        }

        Assert.Equal(Messages, asked.Count);
        // 16 MiB per batch: three of these, then the batch is handled before the next is read.
        foreach (var (uid, handled) in asked)
        {
            var held = (uid - 1 - handled) * (long)ActualBytes;
            Assert.True(held <= 3L * ActualBytes, $"UID {uid} was read while {uid - 1 - handled} messages ({held:N0} bytes) read before it waited unhandled");
        }
    }

    /// <summary>
    /// One IMAP connection: any login, an INBOX of <see cref="Messages"/> messages, each announced as 100 bytes and
    /// sent as <see cref="ActualBytes"/>; no IDLE, so the watch polls.
    /// </summary>
    static async Task ServeAsync(TcpClient tcp, Action<uint> askedFor, CancellationToken ct)
    {
        using var _ = tcp;
        var stream = tcp.GetStream();
        var reader = new StreamReader(stream, Encoding.ASCII);
        async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct);
        try
        {
            await Say("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready");
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                var words = line.Split(' ');
                var tag = words[0];
                var command = words.ElementAtOrDefault(1)?.ToUpperInvariant() ?? "";
                if (command == "UID") command += " " + words.ElementAtOrDefault(2)?.ToUpperInvariant();
                switch (command)
                {
                    case "CAPABILITY": await Say("* CAPABILITY IMAP4rev1 AUTH=PLAIN"); await Say($"{tag} OK done"); break;
                    case "LOGIN": case "AUTHENTICATE": await Say($"{tag} OK [CAPABILITY IMAP4rev1] logged in"); break;
                    case "LIST":
                        await Say(line.EndsWith("\"\" \"\"", StringComparison.Ordinal) ? "* LIST (\\Noselect) \"/\" \"\"" : "* LIST (\\HasNoChildren) \"/\" INBOX");
                        await Say($"{tag} OK done");
                        break;
                    case "SELECT": case "EXAMINE":
                        await Say($"* {Messages} EXISTS"); await Say("* 0 RECENT"); await Say("* OK [UIDVALIDITY 7] ok"); await Say($"* OK [UIDNEXT {Messages + 1}] ok");
                        await Say($"{tag} OK [READ-ONLY] selected");
                        break;
                    case "UID SEARCH":
                        await Say("* SEARCH " + string.Join(' ', Enumerable.Range(1, Messages)));
                        await Say($"{tag} OK done");
                        break;
                    case "UID FETCH" when line.Contains("BODY.PEEK[]", StringComparison.OrdinalIgnoreCase):
                    {
                        var uid = uint.Parse(words[3], System.Globalization.CultureInfo.InvariantCulture);
                        askedFor(uid);
                        var body = Message(uid);
                        await stream.WriteAsync(Encoding.ASCII.GetBytes($"* {uid} FETCH (UID {uid} BODY[] {{{body.Length}}}\r\n"), ct);
                        await stream.WriteAsync(body, ct);
                        await Say(")");
                        await Say($"{tag} OK done");
                        break;
                    }
                    case "UID FETCH":
                        for (var uid = 1; uid <= Messages; uid++)
                        {
                            await Say($"* {uid} FETCH (UID {uid} RFC822.SIZE 100 INTERNALDATE \"{DateTimeOffset.UtcNow:dd-MMM-yyyy HH:mm:ss} +0000\")");
                        }
                        await Say($"{tag} OK done");
                        break;
                    case "LOGOUT": await Say("* BYE"); await Say($"{tag} OK bye"); return;
                    default: await Say($"{tag} OK done"); break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The watch hung up, or the test is over.
        }
    }

    static byte[] Message(uint uid)
    {
        var text = new StringBuilder();
        text.Append("From: someone@partner.test\r\nTo: me@encom.test\r\n");
        text.Append($"Subject: Large {uid}\r\nMessage-ID: <large-{uid}@partner.test>\r\nDate: {DateTimeOffset.UtcNow:R}\r\n");
        text.Append("Content-Type: text/plain\r\n\r\n");
        var line = new string('x', 76) + "\r\n";
        while (text.Length + line.Length <= ActualBytes) text.Append(line);
        return Encoding.ASCII.GetBytes(text.ToString());
    }
}
