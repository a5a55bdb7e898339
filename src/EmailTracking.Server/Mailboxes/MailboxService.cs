using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes.Gmail;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Mailboxes;

public sealed record ServerRequest(string? Host, int? Port, MailSecurity? Security);

public sealed record ConnectImapRequest(string? Address, string? Username, string? Password, ServerRequest? Imap, ServerRequest? Smtp,
    string? SmtpUsername = null, string? SmtpPassword = null);

/// <param name="Unreadable">Messages of the mailbox that could not be read or handled, noted for the user
/// (<c>GET /api/mailboxes/{id}/unreadable</c>).</param>
public sealed record MailboxSummary(Guid Id, MailboxKind Kind, string Address, MailboxStatus Status, string? StatusMessage,
    DateTimeOffset CreatedAt, DateTimeOffset? LastSyncAt, string? Server, int Unreadable);

/// <summary>A message of a mailbox that could not be read or handled, as the user sees it.</summary>
public sealed record UnreadableSummary(long Id, string ProviderId, string? Folder, string Reason, long? Size, DateTimeOffset? ReceivedAt, DateTimeOffset SeenAt);

/// <summary>Connects, lists and removes the user's mailboxes. Credentials are checked against the servers before they are kept.</summary>
public sealed class MailboxService(AppDbContext db, MailboxSecrets secrets, IOptions<MailboxOptions> options, MailboxWatcher watcher, TimeProvider clock,
    GmailAuth gmail, GraphConnector graph)
{
    public async Task<List<MailboxSummary>> ListAsync(CurrentUser me, CancellationToken ct)
    {
        var rows = await db.Mailboxes.Where(m => m.UserId == me.Id).OrderBy(m => m.Address).AsNoTracking().ToListAsync(ct);
        var unreadable = await db.UnreadableMessages.Where(u => u.UserId == me.Id).GroupBy(u => u.ConnectionId)
            .Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(x => x.Key, x => x.Count, ct);
        return [.. rows.Select(m => Summarize(m, unreadable.GetValueOrDefault(m.Id)))];
    }

    /// <summary>The messages of one of the user's mailboxes that could not be read or handled, newest first; null when the mailbox is not theirs.</summary>
    public async Task<List<UnreadableSummary>?> UnreadableAsync(CurrentUser me, Guid id, int limit, CancellationToken ct)
    {
        if (!await db.Mailboxes.AnyAsync(m => m.Id == id && m.UserId == me.Id, ct)) return null;
        return await db.UnreadableMessages.Where(u => u.ConnectionId == id && u.UserId == me.Id).OrderByDescending(u => u.Id).Take(limit)
            .Select(u => new UnreadableSummary(u.Id, u.ProviderId, u.Folder, u.Reason, u.Size, u.ReceivedAt, u.SeenAt)).ToListAsync(ct);
    }

    /// <summary>
    /// Clears the notes of one of the user's mailboxes (they have looked at those messages); false when the mailbox is
    /// not theirs. Only notes up to <paramref name="upTo"/> (the newest the user saw) go, so one that arrived meanwhile stays.
    /// </summary>
    public async Task<bool> ClearUnreadableAsync(CurrentUser me, Guid id, long? upTo, CancellationToken ct)
    {
        if (!await db.Mailboxes.AnyAsync(m => m.Id == id && m.UserId == me.Id, ct)) return false;
        await db.UnreadableMessages.Where(u => u.ConnectionId == id && u.UserId == me.Id && (upTo == null || u.Id <= upTo)).ExecuteDeleteAsync(ct);
        return true;
    }

    public MailboxSummary Summarize(MailboxConnection m, int unreadable = 0)
    {
        string? server = null;
        if (m.Kind == MailboxKind.Imap && secrets.UnprotectImap(m.ProtectedSecret) is { } s)
        {
            server = $"IMAP {s.Imap.Host}:{s.Imap.Port}, SMTP {s.Smtp.Host}:{s.Smtp.Port}";
        }
        else if (m.Kind == MailboxKind.Gmail)
        {
            server = "Gmail API";
        }
        return new MailboxSummary(m.Id, m.Kind, m.Address, m.Status, m.StatusMessage, m.CreatedAt, m.LastSyncAt, server, unreadable);
    }

    /// <summary>Validation errors by field, or the problem the servers reported, or the connection (created or reconnected).</summary>
    public async Task<ConnectResult> ConnectImapAsync(CurrentUser me, ConnectImapRequest request, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var address = AccountService.NormalizeAddress(request.Address);
        // Either form of one of the user's addresses (domain in punycode or in Unicode), as registration takes.
        var forms = address is null ? [] : AccountService.StoredForms(address);
        if (address is null) errors["address"] = ["The mailbox's email address is required."];
        else if (!await db.UserAddresses.AnyAsync(a => a.UserId == me.Id && forms.Contains(a.Address), ct))
            errors["address"] = [$"{address} is not one of your addresses. Add it under Your addresses (/addresses, or POST /api/me/addresses) first."];
        if (string.IsNullOrWhiteSpace(request.Username)) errors["username"] = ["The login name is required."];
        if (string.IsNullOrEmpty(request.Password)) errors["password"] = ["The password (or app password) is required."];
        var imap = Endpoint(request.Imap, 993, MailSecurity.Tls, "imap", errors);
        var smtp = Endpoint(request.Smtp, 587, MailSecurity.StartTls, "smtp", errors);
        if (errors.Count > 0) return new ConnectResult(null, errors, null, false);

        var secret = new ImapSmtpSecret(imap!, smtp!, request.Username!.Trim(), request.Password!,
            string.IsNullOrWhiteSpace(request.SmtpUsername) ? null : request.SmtpUsername.Trim(),
            string.IsNullOrEmpty(request.SmtpPassword) ? null : request.SmtpPassword);
        try
        {
            using (var client = await MailConnect.ImapAsync(secret, options.Value, ct))
            {
                await client.Inbox.OpenAsync(MailKit.FolderAccess.ReadOnly, ct);
                await client.DisconnectAsync(true, ct);
            }
            using (var client = await MailConnect.SmtpAsync(secret, options.Value, ct))
            {
                await client.DisconnectAsync(true, ct);
            }
        }
        catch (MailboxException ex)
        {
            return new ConnectResult(null, null, ex.Message, false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new ConnectResult(null, null, MailConnect.Translate("IMAP", imap!, ex, ct).Message, false);
        }

        // Connected before, perhaps with the domain written the other way: reconnected, not connected twice.
        var existing = await db.Mailboxes.FirstOrDefaultAsync(m => m.UserId == me.Id && m.Kind == MailboxKind.Imap && forms.Contains(m.Address), ct);
        var created = existing is null;
        var connection = existing ?? new MailboxConnection
        {
            TeamId = me.TeamId, UserId = me.Id, Kind = MailboxKind.Imap, Address = address!, ProtectedSecret = "", CreatedAt = clock.GetUtcNow(),
        };
        connection.ProtectedSecret = secrets.Protect(secret);
        connection.Status = MailboxStatus.Active;
        connection.StatusMessage = null;
        connection.Failures = 0;
        if (created) db.Mailboxes.Add(connection);
        await db.SaveChangesAsync(ct);
        watcher.Restart(connection.Id);
        return new ConnectResult(connection, null, null, created);
    }

    public async Task<bool> RemoveAsync(CurrentUser me, Guid id, CancellationToken ct)
    {
        var row = await db.Mailboxes.Where(m => m.Id == id && m.UserId == me.Id).Select(m => new { m.Kind, m.ProtectedSecret }).FirstOrDefaultAsync(ct);
        var connection = row?.Kind == MailboxKind.Graph ? await db.Mailboxes.AsNoTracking().FirstOrDefaultAsync(m => m.Id == id, ct) : null;
        // Disabled before its subscriptions are read: a watch that keeps a new subscription after this read finds the
        // mailbox disabled when it checks, and deletes that subscription itself (GraphWatch).
        if (connection is not null)
        {
            await db.Mailboxes.Where(m => m.Id == id && m.UserId == me.Id).ExecuteUpdateAsync(s => s.SetProperty(m => m.Status, MailboxStatus.Disabled), ct);
        }
        var subscriptions = connection is null ? [] : await db.MailboxCursors
            .Where(c => c.ConnectionId == id && c.Name.StartsWith(GraphWatch.SubscriptionPrefix))
            .Select(c => c.Name).ToListAsync(ct);
        var n = await db.Mailboxes.Where(m => m.Id == id && m.UserId == me.Id).ExecuteDeleteAsync(ct);
        if (n > 0)
        {
            await db.MailboxCursors.Where(c => c.ConnectionId == id).ExecuteDeleteAsync(ct);
            // The notes are about the mailbox as it was watched; its recorded answers stay.
            await db.UnreadableMessages.Where(u => u.ConnectionId == id).ExecuteDeleteAsync(ct);
            watcher.Wake();
            if (row?.Kind == MailboxKind.Gmail && secrets.Unprotect<GmailSecret>(row.ProtectedSecret) is { } grant)
            {
                await gmail.StopAndRevokeAsync(id, grant, ct);
            }
            // A disconnected Microsoft mailbox's change notifications are ended at once rather than left to expire.
            if (connection is not null && subscriptions.Count > 0)
            {
                await graph.EndSubscriptionsAsync(connection, [.. subscriptions.Select(n => n[GraphWatch.SubscriptionPrefix.Length..])], ct);
            }
        }
        return n > 0;
    }

    static ServerEndpoint? Endpoint(ServerRequest? r, int defaultPort, MailSecurity defaultSecurity, string field, Dictionary<string, string[]> errors)
    {
        var host = r?.Host?.Trim();
        if (HostProblem(host, field) is { } why)
        {
            errors[field + ".host"] = [why];
            return null;
        }
        var port = r!.Port ?? defaultPort;
        if (port is < 1 or > 65535)
        {
            errors[field + ".port"] = ["The port must be between 1 and 65535."];
            return null;
        }
        var security = r.Security ?? defaultSecurity;
        if (!Enum.IsDefined(security))
        {
            errors[field + ".security"] = ["Security is tls, start-tls or none."];
            return null;
        }
        return new ServerEndpoint(host!, port, security);
    }

    /// <summary>
    /// Why a server's host name cannot be used, or null. "Required" was said of anything that was not a host name, such
    /// as "imap.example.com:993" or "https://imap.example.com", and the user could not tell what was wrong: a host with
    /// its port, or a URL, is told to give the host alone and the port in its own field.
    /// </summary>
    internal static string? HostProblem(string? host, string field)
    {
        var server = $"The {field.ToUpperInvariant()} server";
        if (string.IsNullOrEmpty(host)) return $"{server}'s host name is required.";
        if (host.Length > 253) return $"{server}'s host name is longer than 253 characters.";
        if (Uri.CheckHostName(host) != UriHostNameType.Unknown) return null;
        var shown = host.Length > 100 ? host[..100] + "…" : host;
        if (host.Contains("://", StringComparison.Ordinal))
        {
            return Uri.TryCreate(host, UriKind.Absolute, out var url) && Uri.CheckHostName(url.IdnHost) != UriHostNameType.Unknown
                ? $"'{shown}' is a web address, not a host name: give the host alone ({url.Host.Trim('[', ']')})" + (url.IsDefaultPort ? "" : $" and the port ({url.Port}) in its own field") + "."
                : $"'{shown}' is a web address, not a host name: give the {field.ToUpperInvariant()} server's host name alone, such as {field}.example.com.";
        }
        var colon = host.LastIndexOf(':');
        if (colon > 0 && int.TryParse(host.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port))
        {
            var alone = host[..colon].Trim('[', ']');
            if (Uri.CheckHostName(alone) != UriHostNameType.Unknown)
                return $"'{shown}' has a port in it: give the host alone ({alone}) and the port ({port}) in its own field.";
        }
        return $"'{shown}' is not a valid host name: use letters, digits, hyphens and dots, such as {field}.example.com, or an IP address.";
    }
}

public sealed record ConnectResult(MailboxConnection? Connection, Dictionary<string, string[]>? Errors, string? ServerProblem, bool Created);
