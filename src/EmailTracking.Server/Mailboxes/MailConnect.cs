using System.Net;
using System.Net.Sockets;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Smtp;
using MailKit.Security;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// A mailbox problem in words a user can act on. <see cref="NeedsReconnect"/> means the credentials or settings are
/// wrong (login refused, TLS impossible): retrying alone will not help. Otherwise the problem is transient.
/// </summary>
public sealed class MailboxException(string message, bool needsReconnect, Exception? inner = null) : Exception(message, inner)
{
    public bool NeedsReconnect { get; } = needsReconnect;
}

/// <summary>Opens logged-in IMAP and SMTP clients (MailKit) and turns their failures into <see cref="MailboxException"/>.</summary>
public static class MailConnect
{
    /// <param name="protocolLogger">Sees what goes between the client and the server (<see cref="ImapResponseTail"/>);
    /// the client disposes of it.</param>
    public static async Task<ImapClient> ImapAsync(ImapSmtpSecret secret, MailboxOptions options, CancellationToken ct, IProtocolLogger? protocolLogger = null)
    {
        var timeout = options.Timeout;
        var client = protocolLogger is null ? new ImapClient() : new ImapClient(protocolLogger);
        client.Timeout = (int)timeout.TotalMilliseconds;
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            await ConnectAsync(client, "IMAP", secret.Imap, options, options.MaxMessageBytes + ImapReplySlack, cts.Token);
            await client.AuthenticateAsync(secret.Username, secret.Password, cts.Token);
            return client;
        }
        catch (Exception ex)
        {
            client.Dispose();
            throw Translate("IMAP", secret.Imap, ex, ct);
        }
    }

    public static async Task<SmtpClient> SmtpAsync(ImapSmtpSecret secret, MailboxOptions options, CancellationToken ct)
    {
        var timeout = options.Timeout;
        var client = new SmtpClient { Timeout = (int)timeout.TotalMilliseconds };
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            await ConnectAsync(client, "SMTP", secret.Smtp, options, SmtpReplyLimit, cts.Token);
            // A relay that offers no AUTH (a local MTA) is used as it is; any server that offers it gets the login.
            if (client.Capabilities.HasFlag(SmtpCapabilities.Authentication))
            {
                await client.AuthenticateAsync(secret.SmtpUsername ?? secret.Username, secret.SmtpPassword ?? secret.Password, cts.Token);
            }
            return client;
        }
        catch (Exception ex)
        {
            client.Dispose();
            throw Translate("SMTP", secret.Smtp, ex, ct);
        }
    }

    /// <summary>
    /// A socket connected to the server, at an address checked here: the host a user typed is resolved once, and unless
    /// <see cref="MailboxOptions.AllowPrivateHosts"/> says so only public addresses are used, so a mailbox setting cannot
    /// make this server reach its own machine, its network or a cloud metadata service (nor a name that resolves there,
    /// later or at once). TLS is still checked against the host name.
    /// </summary>
    static async Task ConnectAsync(MailService client, string protocol, ServerEndpoint server, MailboxOptions options, long replyLimit, CancellationToken ct)
    {
        var socket = await SocketAsync(protocol, server, options, ct);
        // What the server may send in answer to one command is limited (ReplyLimitStream); TLS goes on top of it.
        var stream = new ReplyLimitStream(new NetworkStream(socket, ownsSocket: true), replyLimit);
        try
        {
            await client.ConnectAsync(stream, server.Host, server.Port, server.SocketOptions, ct);
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }

    /// <summary>An IMAP answer may hold a whole message (up to <c>Mailboxes:MaxMessageBytes</c>) and this much besides.</summary>
    public const long ImapReplySlack = 4L * 1024 * 1024;

    /// <summary>No SMTP answer comes near this (a few lines each).</summary>
    public const long SmtpReplyLimit = 1024 * 1024;

    static async Task<Socket> SocketAsync(string protocol, ServerEndpoint server, MailboxOptions options, CancellationToken ct)
    {
        var isLiteral = IPAddress.TryParse(server.Host, out var literal);
        var addresses = isLiteral ? [literal!] : await (options.Resolve ?? Web.PublicAddress.Resolve)(server.Host, ct);
        var usable = options.AllowPrivateHosts ? addresses : addresses.Where(Web.PublicAddress.IsPublic).ToArray();
        if (usable.Length == 0)
        {
            // A typed address is wrong until the user changes it. A name's answers are not shown (they would tell any
            // user what an internal name resolves to), and may change back (a DNS filter answering 0.0.0.0 for a
            // while): the watch retries it with its back-off instead of parking the mailbox.
            throw new MailboxException(
                $"The {protocol} server {server.Host}:{server.Port} {(isLiteral ? "is a private or local address" : "resolves only to private or local addresses")}, " +
                "which this EmailTracking server does not connect to. Use your provider's public server name, or ask your administrator to allow " +
                "mail servers on your own network (Mailboxes:AllowPrivateHosts).", needsReconnect: isLiteral);
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(usable, server.Port, ct);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static Exception Translate(string protocol, ServerEndpoint server, Exception ex, CancellationToken ct)
    {
        if (ex is MailboxException) return ex;
        if (ex is OperationCanceledException && ct.IsCancellationRequested) return ex;
        var where = $"{protocol} server {server.Host}:{server.Port}";
        return ex switch
        {
            AuthenticationException => new MailboxException($"The {where} refused the login: {ex.Message}", needsReconnect: true, ex),
            SslHandshakeException => new MailboxException($"No secure connection could be made with the {where} ({server.Security}): check the port and security setting.", needsReconnect: true, ex),
            OperationCanceledException or TimeoutException => new MailboxException($"The {where} did not answer in time.", needsReconnect: false, ex),
            SocketException s => new MailboxException($"Could not reach the {where}: {s.Message}", needsReconnect: false, ex),
            SmtpCommandException s => new MailboxException($"The {where} answered {(int)s.StatusCode}: {s.Message}", needsReconnect: false, ex),
            ImapCommandException i => new MailboxException($"The {where} answered {i.Response}: {i.ResponseText}", needsReconnect: false, ex),
            ProtocolException or IOException => new MailboxException($"The connection to the {where} failed: {ex.Message}", needsReconnect: false, ex),
            NotSupportedException => new MailboxException($"The {where} does not support what is needed: {ex.Message}", needsReconnect: true, ex),
            _ => ex,
        };
    }
}
