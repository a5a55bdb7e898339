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
/// A mailbox whose login was refused waits out the longest back-off before it tries again, unless it is connected
/// again. The instance that takes the new login restarts only the watches it runs itself: the watch may run on another
/// instance, which learns of the reconnect from the database alone, as here, where the new login is written to the row
/// the way another instance's connect writes it.
/// </summary>
public sealed class ReconnectElsewhereTests
{
    [Fact]
    public async Task A_watch_waiting_out_a_refused_login_takes_a_new_login_stored_by_another_instance_before_its_back_off_ends()
    {
        // The longest back-off far beyond the test: only the reconnect may end the wait.
        await using var app = new ConfiguredApp(("Mailboxes:MaxBackoff", "00:30:00"));
        var user = await app.NewUserAsync();
        var connectionId = Guid.NewGuid();
        var logins = new List<string>();

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
                _ = Task.Run(() => ServeAsync(tcp, password => { lock (logins) logins.Add(password); }, stop.Token));
            }
        });
        try
        {
            var secrets = app.Services.GetRequiredService<MailboxSecrets>();
            var endpoint = new ServerEndpoint("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port, MailSecurity.None);
            await app.WithDbAsync(async db =>
            {
                db.Mailboxes.Add(new MailboxConnection
                {
                    Id = connectionId, TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email,
                    ProtectedSecret = secrets.Protect(new ImapSmtpSecret(endpoint, endpoint, "me", "old-password")), CreatedAt = DateTimeOffset.UtcNow,
                });
                await db.SaveChangesAsync();
            });
            MailboxConnection Row() => app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == connectionId));
            await UntilAsync(() => Row().Status == MailboxStatus.NeedsReconnect, "the refused login marks the mailbox");

            // Another instance took the new login: the row changes, and no Restart reaches this instance's watcher.
            var fixedLogin = secrets.Protect(new ImapSmtpSecret(endpoint, endpoint, "me", "new-password"));
            await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == connectionId).ExecuteUpdateAsync(s => s
                .SetProperty(m => m.ProtectedSecret, fixedLogin).SetProperty(m => m.Status, MailboxStatus.Active)
                .SetProperty(m => m.StatusMessage, (string?)null).SetProperty(m => m.Failures, 0)));
            await UntilAsync(() => Row().LastSyncAt is not null, "the watch reads the mailbox with the new login");
            Assert.Equal(MailboxStatus.Active, Row().Status);
            lock (logins) Assert.Equal("new-password", logins[^1]);
        }
        finally
        {
            await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == connectionId).ExecuteDeleteAsync());
            await stop.CancelAsync();
            listener.Stop();
            await server;
        }
    }

    static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting: " + what);
            await Task.Delay(200);
        }
    }

    /// <summary>One IMAP connection: LOGIN is refused unless the password is "new-password"; an empty INBOX; no IDLE.</summary>
    static async Task ServeAsync(TcpClient tcp, Action<string> login, CancellationToken ct)
    {
        using var _ = tcp;
        var stream = tcp.GetStream();
        var reader = new StreamReader(stream, Encoding.ASCII);
        async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct);
        try
        {
            await Say("* OK [CAPABILITY IMAP4rev1] ready");
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                var words = line.Split(' ');
                var tag = words[0];
                var command = words.ElementAtOrDefault(1)?.ToUpperInvariant() ?? "";
                if (command == "UID") command += " " + words.ElementAtOrDefault(2)?.ToUpperInvariant();
                switch (command)
                {
                    case "CAPABILITY": await Say("* CAPABILITY IMAP4rev1"); await Say($"{tag} OK done"); break;
                    case "LOGIN":
                        var password = words.ElementAtOrDefault(3)?.Trim('"') ?? "";
                        login(password);
                        await Say(password == "new-password" ? $"{tag} OK [CAPABILITY IMAP4rev1] logged in" : $"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.");
                        break;
                    case "LIST":
                        await Say(line.EndsWith("\"\" \"\"", StringComparison.Ordinal) ? "* LIST (\\Noselect) \"/\" \"\"" : "* LIST (\\HasNoChildren) \"/\" INBOX");
                        await Say($"{tag} OK done");
                        break;
                    case "SELECT": case "EXAMINE":
                        await Say("* 0 EXISTS"); await Say("* 0 RECENT"); await Say("* OK [UIDVALIDITY 7] ok"); await Say("* OK [UIDNEXT 1] ok");
                        await Say($"{tag} OK [READ-ONLY] selected");
                        break;
                    case "UID SEARCH": await Say("* SEARCH"); await Say($"{tag} OK done"); break;
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
}
