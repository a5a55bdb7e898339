namespace EmailTracking.Server.Data;

/// <summary>This server process among the instances sharing one database, and how instances tell each other things.</summary>
public static class ServerInstance
{
    /// <summary>This instance's name in leases (mailbox watches, sequence enrolments, outbox deliveries).</summary>
    public static readonly string Name = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>
    /// Sends a PostgreSQL NOTIFY on its own connection (<c>pg_notify</c>, so channel and payload are parameters), for
    /// the other instances' <see cref="Feed.PostgresFeedListener"/>.
    /// </summary>
    public static async Task NotifyAsync(IConfiguration configuration, string channel, string payload, CancellationToken ct)
    {
        await using var connection = new Npgsql.NpgsqlConnection(configuration.GetConnectionString("Default"));
        await connection.OpenAsync(ct);
        await using var cmd = new Npgsql.NpgsqlCommand("SELECT pg_notify(@channel, @payload)", connection);
        cmd.Parameters.AddWithValue("channel", channel);
        cmd.Parameters.AddWithValue("payload", payload);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
