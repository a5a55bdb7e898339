using EmailTracking.Data;
using EmailTracking.Server.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// A wake-up is never lost: while the watch is busy reading the mailbox, any number of pokes leave one wake-up for its
/// next wait. On PostgreSQL every push reaches the instance that received it twice, once directly and once through its
/// own NOTIFY; when both came while the watch was busy, the second used to take the first back, and the watch slept
/// until its safety poll.
/// </summary>
public sealed class MailboxSignalsWakeTests
{
    static MailboxSignals Signals() =>
        new(new DatabaseInfo(DatabaseProvider.Sqlite), new ConfigurationBuilder().Build(), NullLogger<MailboxSignals>.Instance);

    static Task WaitAsync(MailboxSignals signals, Guid mailbox) =>
        signals.WaitAsync(mailbox, TimeSpan.FromMinutes(10), TimeProvider.System, CancellationToken.None);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Pokes_while_the_watch_is_busy_leave_one_wake_up_for_its_next_wait(int pokes)
    {
        var signals = Signals();
        var mailbox = Guid.NewGuid();
        for (var i = 0; i < pokes; i++) signals.PokeLocal(mailbox);

        Assert.True(WaitAsync(signals, mailbox).IsCompleted, $"{pokes} poke(s) while busy did not wake the next wait");
        // One wake-up, however many pokes: the wait after it waits again.
        Assert.False(WaitAsync(signals, mailbox).IsCompleted);
    }

    [Fact]
    public async Task A_poke_wakes_a_waiting_watch_and_the_pokes_after_it_woke_leave_a_wake_up_for_its_next_wait()
    {
        var signals = Signals();
        var mailbox = Guid.NewGuid();
        var waiting = WaitAsync(signals, mailbox);
        Assert.False(waiting.IsCompleted);
        signals.PokeLocal(mailbox);
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        // The watch reads the mailbox now; new mail arrives and is pushed (twice, on PostgreSQL).
        signals.PokeLocal(mailbox);
        signals.PokeLocal(mailbox);
        Assert.True(WaitAsync(signals, mailbox).IsCompleted, "the pushes during the read did not wake the next wait");
        Assert.False(WaitAsync(signals, mailbox).IsCompleted);
        // Another mailbox's watch was never poked.
        Assert.False(WaitAsync(signals, Guid.NewGuid()).IsCompleted);
    }
}

/// <summary>
/// A provider's push lands on any instance; the watch runs on the one holding the mailbox's lease. On PostgreSQL the
/// wake-up travels between them as NOTIFY.
/// </summary>
public sealed class MailboxSignalsTests(PostgresApp app) : IClassFixture<PostgresApp>
{
    [Fact]
    public async Task A_wake_up_sent_from_another_instance_wakes_the_watch_here()
    {
        var signals = app.Services.GetRequiredService<MailboxSignals>();
        var mailbox = Guid.NewGuid();
        // The watch here waits (far longer than this test allows) for its mailbox to be poked.
        var waiting = signals.WaitAsync(mailbox, TimeSpan.FromMinutes(10), TimeProvider.System, CancellationToken.None);
        Assert.False(waiting.IsCompleted);

        // Another instance received the push: it sends NOTIFY on the shared database.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!waiting.IsCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "the NOTIFY from another instance did not wake the watch");
            await using (var connection = new NpgsqlConnection(app.ConnectionString))
            {
                await connection.OpenAsync();
                await using var cmd = new NpgsqlCommand($"SELECT pg_notify('{MailboxSignals.Channel}', '{mailbox:N}')", connection);
                await cmd.ExecuteNonQueryAsync();
            }
            await Task.WhenAny(waiting, Task.Delay(500));
        }
        await waiting;
    }

    [Fact]
    public async Task A_push_received_here_is_relayed_to_the_other_instances()
    {
        var signals = app.Services.GetRequiredService<MailboxSignals>();
        var mailbox = Guid.NewGuid();
        await using var other = new NpgsqlConnection(app.ConnectionString);
        await other.OpenAsync();
        var heard = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        other.Notification += (_, e) => { if (e.Channel == MailboxSignals.Channel) heard.TrySetResult(e.Payload); };
        await using (var listen = new NpgsqlCommand($"LISTEN {MailboxSignals.Channel}", other))
        {
            await listen.ExecuteNonQueryAsync();
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var waiting = other.WaitAsync(cts.Token);

        signals.Poke(mailbox);

        await waiting;
        Assert.Equal(mailbox.ToString("N"), await heard.Task.WaitAsync(TimeSpan.FromSeconds(5)));
    }
}
