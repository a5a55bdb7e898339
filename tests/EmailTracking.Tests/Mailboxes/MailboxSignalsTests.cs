using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace EmailTracking.Tests.Mailboxes;

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
