using System.Collections.Concurrent;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Sequences;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Sequences;

/// <summary>
/// A transport that keeps what it is given instead of sending it, and answers "is it in Sent?" from what it kept,
/// so that a test can say what the mailbox holds. It can refuse, fail or drop its record of a send.
/// </summary>
public sealed class RecordingTransport : IMailTransport
{
    public ConcurrentQueue<MimeKit.MimeMessage> Sent { get; } = new();
    /// <summary>What a transport that stores its own Sent copies (SMTP) would keep there, by Message-ID.</summary>
    public ConcurrentDictionary<string, MimeKit.MimeMessage> KeptInSent { get; } = new();
    /// <summary>What the mailboxes' Sent folders hold: "{mailbox address} {Message-ID}".</summary>
    public ConcurrentDictionary<string, bool> SentFolder { get; } = new();
    /// <summary>The next send to an address throws this (once). Keyed by recipient: tests share the server and its scheduler.</summary>
    public ConcurrentDictionary<string, MailboxException> FailNext { get; } = new();
    /// <summary>Recipients the server refuses.</summary>
    public ConcurrentDictionary<string, bool> Refuse { get; } = new();
    /// <summary>False: the mailbox cannot tell what it sent.</summary>
    public bool CanTell { get; set; } = true;
    /// <summary>The next send to an address leaves and the process dies before it hears back (the exception stands for the crash).</summary>
    public ConcurrentDictionary<string, bool> CrashAfterSend { get; } = new();
    /// <summary>The process dies as it starts sending to an address: nothing leaves.</summary>
    public ConcurrentDictionary<string, bool> CrashBeforeSend { get; } = new();
    /// <summary>The process dies as it comes to the copy for an address: the copies before it left, it and the rest did not.</summary>
    public ConcurrentDictionary<string, bool> CrashAtCopy { get; } = new();
    /// <summary>The server refuses mail to an address for now (451, greylisting) this many more times.</summary>
    public ConcurrentDictionary<string, int> RefuseForNow { get; } = new();
    /// <summary>The next send to an address loses its connection after handing the mail over; true: the mail left all the same.</summary>
    public ConcurrentDictionary<string, bool> LostAfterHandover { get; } = new();
    /// <summary>Mail to these addresses is reported in a provider thread, as Gmail and Graph report it: the thread the
    /// copy named, or a new one.</summary>
    public ConcurrentDictionary<string, bool> Threads { get; } = new();
    /// <summary>The thread each sent copy named (by Message-ID), null for none.</summary>
    public ConcurrentDictionary<string, string?> NamedThreads { get; } = new();

    /// <summary>Awaited (once) while mail to an address is being sent: what happens meanwhile elsewhere (another instance's pass).</summary>
    public ConcurrentDictionary<string, Func<Task>> WhileSending { get; } = new();

    public async Task<TransportResult> SendAsync(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies, CancellationToken ct)
    {
        foreach (var a in copies.SelectMany(c => c.Envelope))
            if (WhileSending.TryRemove(a.Address, out var meanwhile)) await meanwhile();
        return Send(mailbox, copies);
    }

    TransportResult Send(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies)
    {
        var to = copies.SelectMany(c => c.Envelope).Select(a => a.Address).ToList();
        foreach (var a in to)
        {
            if (FailNext.TryRemove(a, out var fail)) throw fail;
            if (CrashBeforeSend.TryRemove(a, out _)) throw new InvalidOperationException("the process died before the mail left");
        }
        var results = new List<CopySendResult>();
        foreach (var c in copies)
        {
            if (c.Envelope.Any(a => CrashAtCopy.TryRemove(a.Address, out _))) throw new InvalidOperationException("the process died halfway through the copies");
            if (c.Envelope.Any(a => Refuse.ContainsKey(a.Address)))
            {
                results.Add(new CopySendResult(c.CopyId, false, "550 5.1.1 User unknown"));
                continue;
            }
            if (c.Envelope.FirstOrDefault(a => RefuseForNow.TryGetValue(a.Address, out var n) && n > 0) is { } greylisted)
            {
                RefuseForNow.AddOrUpdate(greylisted.Address, 0, (_, n) => n - 1);
                results.Add(new CopySendResult(c.CopyId, false, "451 4.7.1 Greylisted, try again later", Temporary: true));
                continue;
            }
            if (c.Envelope.Select(a => a.Address).FirstOrDefault(LostAfterHandover.ContainsKey) is { } lost)
            {
                LostAfterHandover.TryRemove(lost, out var left);
                if (left)
                {
                    Sent.Enqueue(c.Message);
                    SentFolder[$"{mailbox.Address} {c.Message.MessageId}"] = true;
                }
                results.Add(new CopySendResult(c.CopyId, false, "The connection to the SMTP server failed", Temporary: true, MayHaveLeft: true));
                continue;
            }
            Sent.Enqueue(c.Message);
            SentFolder[$"{mailbox.Address} {c.Message.MessageId}"] = true;
            if (c.ForSentFolder is { } keep) KeptInSent[c.Message.MessageId!] = keep;
            NamedThreads[c.Message.MessageId!] = c.ThreadId;
            var thread = c.Envelope.Any(a => Threads.ContainsKey(a.Address)) ? c.ThreadId ?? "thread-" + Guid.NewGuid().ToString("N")[..16] : null;
            results.Add(new CopySendResult(c.CopyId, true, null, c.Message.MessageId, thread));
        }
        if (to.Any(a => CrashAfterSend.TryRemove(a, out _))) throw new InvalidOperationException("the process died after the mail left");
        return new TransportResult(results, null);
    }

    public Task<bool?> IsInSentAsync(MailboxConnection mailbox, string messageId, string pixelToken, CancellationToken ct) =>
        Task.FromResult<bool?>(CanTell ? SentFolder.ContainsKey($"{mailbox.Address} {messageId.Trim('<', '>')}") : null);

    /// <summary>Why <see cref="FindInSentAsync"/> cannot tell when <see cref="CanTell"/> is false.</summary>
    public const string CannotTell = "The recording mailbox was told not to tell.";

    /// <summary>The mailbox cannot be asked (it throws this) while set.</summary>
    public MailboxException? Unreachable { get; set; }

    public Task<IReadOnlyList<SentLookup>> FindInSentAsync(MailboxConnection mailbox, IReadOnlyList<SentQuery> copies, CancellationToken ct)
    {
        if (Unreachable is { } down) throw down;
        return Task.FromResult<IReadOnlyList<SentLookup>>([.. copies.Select(c => !CanTell
            ? new SentLookup(null, Why: CannotTell)
            : SentFolder.ContainsKey($"{mailbox.Address} {c.MessageId.Trim('<', '>')}")
                ? new SentLookup(true, c.MessageId.Trim('<', '>'), "thread-of-" + c.MessageId.Trim('<', '>'))
                : new SentLookup(false))]);
    }

    public List<MimeKit.MimeMessage> To(string address) => [.. Sent.Where(m => m.To.Mailboxes.Any(a => a.Address == address))];
}

/// <summary>A mailbox watch that watches nothing: these tests write answers as the watchers would.</summary>
public sealed class NoWatch : IMailboxWatch
{
    public Task RunAsync(Guid connectionId, CancellationToken ct) => Task.Delay(Timeout.Infinite, ct);
}

/// <summary>
/// The server with sequence time on a fake clock, the scheduler's background loop off (tests run its passes), and an
/// IMAP mailbox's sending through <see cref="RecordingTransport"/>.
/// </summary>
public abstract class SequenceApp(DatabaseProvider provider) : AppFactory(provider)
{
    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero)); // a Monday
    public RecordingTransport Transport { get; } = new();

    protected override void Configure(IWebHostBuilder builder)
    {
        builder.UseSetting("Sequences:Enabled", "false");
        builder.UseSetting("Sequences:MinSpacing", "00:00:00");
        builder.ConfigureServices(s =>
        {
            s.AddKeyedSingleton<TimeProvider>(SequenceOptions.ClockKey, Clock);
            s.AddKeyedScoped<IMailTransport>(MailboxKind.Imap, (_, _) => Transport);
            s.AddKeyedScoped<IMailboxWatch, NoWatch>(MailboxKind.Imap);
        });
    }

    /// <summary>One scheduler pass, as the background loop makes it (of the instance <paramref name="owner"/>).</summary>
    public async Task PassAsync(string owner = "test-instance")
    {
        using var scope = Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<SequenceRunner>().RunOnceAsync(owner, "https://t.example.com", CancellationToken.None);
    }

    /// <summary>An IMAP mailbox for the user (its credentials are never used: the transport records).</summary>
    public async Task<Guid> MailboxAsync(TestUser user, string? address = null)
    {
        address ??= user.Email;
        var id = Guid.NewGuid();
        await WithDbAsync(async db =>
        {
            if (!db.UserAddresses.Any(a => a.Address == address)) db.UserAddresses.Add(new UserAddress { UserId = user.Id, Address = address });
            db.Mailboxes.Add(new MailboxConnection
            {
                Id = id, TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = address, Status = MailboxStatus.Active,
                ProtectedSecret = "unused", CreatedAt = Clock.GetUtcNow(),
            });
            await db.SaveChangesAsync();
        });
        return id;
    }
}

public sealed class SequenceSqliteApp() : SequenceApp(DatabaseProvider.Sqlite);

public sealed class SequencePostgresApp() : SequenceApp(DatabaseProvider.Postgres);
