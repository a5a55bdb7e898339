using System.Collections.Concurrent;
using EmailTracking.Data;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Watches one mailbox of its kind until cancelled: reads what arrived since its stored checkpoint, hands each
/// message to the inbound pipeline (and sent mail to the sent-mail scanner), advances the checkpoint after each
/// handled message, then waits for more. Registered as a keyed scoped service per <see cref="MailboxKind"/>.
/// </summary>
public interface IMailboxWatch
{
    Task RunAsync(Guid connectionId, CancellationToken ct);
}

/// <summary>One tracked copy ready to leave: the MIME message with our Message-ID and its envelope.</summary>
/// <param name="ForSentFolder">
/// What the mailbox's Sent folder keeps of the mail, where the transport stores it there itself (SMTP): the mail as the
/// sender wrote it, with no pixel and its links as written, and every recipient, Bcc included (see
/// <see cref="MailSender.ForSentFolder"/>). The tracked copy itself would count the sender's own look at their Sent
/// folder, in a mail client that loads images, as the recipient's open, and their clicks as the recipient's. Several
/// copies of one send may share it: its Message-ID is set to that of the copy it stands for when it is stored. Null:
/// the copy itself is kept.
/// </param>
/// <param name="ThreadId">
/// The provider's thread (of this mailbox) the copy continues, as its transport reported it for an earlier mail: a
/// sequence's follow-up. Gmail files mail sent through its API in a thread only when the request names it, whatever
/// the References say; other transports thread by the headers and leave it.
/// </param>
public sealed record OutgoingCopy(Guid CopyId, MimeMessage Message, MailboxAddress Sender, IReadOnlyList<MailboxAddress> Envelope,
    MimeMessage? ForSentFolder = null, string? ThreadId = null);

/// <summary>
/// What became of one copy. The provider may have kept another Message-ID (Outlook does) and has a thread id. A copy
/// not sent may have been refused for now (<paramref name="Temporary"/>: an SMTP 4xx such as greylisting, a lost
/// connection, throttling, a provider's 5xx), when sending it again later is right; and when the failure came after the
/// mail was handed over (a connection lost during DATA, a send request that timed out), it <paramref name="MayHaveLeft"/>,
/// so whoever retries must first look in the Sent folder.
/// </summary>
public sealed record CopySendResult(Guid CopyId, bool Sent, string? Error, string? SentMessageId = null, string? ProviderThreadId = null,
    bool Temporary = false, bool MayHaveLeft = false);

public sealed record TransportResult(IReadOnlyList<CopySendResult> Copies, string? Warning);

/// <summary>
/// Sends tracked copies through one mailbox of its kind. Throws <see cref="MailboxException"/> when nothing could be
/// sent at all (login refused, server unreachable); otherwise reports each copy. Registered as a keyed scoped service
/// per <see cref="MailboxKind"/>.
/// </summary>
public interface IMailTransport
{
    Task<TransportResult> SendAsync(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies, CancellationToken ct);

    /// <summary>
    /// Whether a copy already left: found in the mailbox's Sent folder by its Message-ID (or, where the provider
    /// replaces it, by our token). Null when this mailbox cannot tell. Used after a crash between a send and its
    /// record, so that nothing goes twice.
    /// </summary>
    Task<bool?> IsInSentAsync(MailboxConnection mailbox, string messageId, string pixelToken, CancellationToken ct);

    /// <summary>
    /// Which copies of one send are in the mailbox's Sent folder, in the order given: for each, whether it left (null
    /// when this mailbox cannot tell, with the reason), and where it did, the Message-ID and thread the provider kept,
    /// as <see cref="SendAsync"/> reports them. Used by a retry of a send that stopped before it answered. Throws
    /// <see cref="MailboxException"/> when the mailbox cannot be asked.
    /// </summary>
    Task<IReadOnlyList<SentLookup>> FindInSentAsync(MailboxConnection mailbox, IReadOnlyList<SentQuery> copies, CancellationToken ct);
}

/// <summary>One copy to look for in Sent: our Message-ID (without angle brackets) and its pixel token.</summary>
public sealed record SentQuery(string MessageId, string PixelToken);

/// <summary>What a look in Sent found of one copy; <paramref name="Why"/> says why it cannot tell when <paramref name="Left"/> is null.</summary>
public sealed record SentLookup(bool? Left, string? SentMessageId = null, string? ThreadId = null, string? Why = null);

/// <summary>
/// Wakes a mailbox's watch from outside: a push notification (Gmail Pub/Sub, Graph change notification) arrived
/// for it. A watch waits on its signal with a timeout, so a lost push delays mail, never loses it. On PostgreSQL a
/// poke is also sent as NOTIFY, so that it reaches the instance that holds the mailbox's lease, wherever the push
/// landed (<see cref="Feed.PostgresFeedListener"/> listens and pokes locally).
/// </summary>
public sealed class MailboxSignals(Data.DatabaseInfo database, IConfiguration configuration, ILogger<MailboxSignals> log)
{
    public const string Channel = "et_mailbox";

    readonly ConcurrentDictionary<Guid, TaskCompletionSource> signals = new();

    public void Poke(Guid connectionId)
    {
        PokeLocal(connectionId);
        if (database.Provider == DatabaseProvider.Postgres) _ = NotifyAsync(connectionId);
    }

    /// <summary>
    /// Wakes the watch if it runs in this instance: completes the signal it waits on, or leaves a completed one for its
    /// next wait when it is busy. Pokes never cancel each other out: on PostgreSQL every push arrives here twice (once
    /// directly, once through its own NOTIFY), and both may come while the watch is reading the mailbox.
    /// </summary>
    public void PokeLocal(Guid connectionId) =>
        signals.GetOrAdd(connectionId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    async Task NotifyAsync(Guid connectionId)
    {
        try
        {
            await Data.ServerInstance.NotifyAsync(configuration, Channel, connectionId.ToString("N"), CancellationToken.None);
        }
        catch (Exception ex)
        {
            // The watch's own poll still finds the mail.
            log.LogWarning(ex, "Could not relay a wake-up for mailbox {Id} to other instances", connectionId);
        }
    }

    /// <summary>
    /// Completes at the next poke (or at once when one came since the last wait), or after the timeout; true when it was
    /// a poke.
    /// </summary>
    public async Task<bool> WaitAsync(Guid connectionId, TimeSpan timeout, TimeProvider clock, CancellationToken ct)
    {
        var signal = signals.GetOrAdd(connectionId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (signal.Task.IsCompleted)
        {
            signals.TryRemove(new KeyValuePair<Guid, TaskCompletionSource>(connectionId, signal));
            return true;
        }
        await Task.WhenAny(signal.Task, Task.Delay(timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, clock, ct));
        ct.ThrowIfCancellationRequested();
        signals.TryRemove(new KeyValuePair<Guid, TaskCompletionSource>(connectionId, signal));
        return signal.Task.IsCompleted;
    }
}
