namespace EmailTracking.Server.Web;

/// <summary>
/// Lets one request at a time, about once a minute per instance, do a table's upkeep (deleting expired rows) on its
/// way: no background service is needed for tables that only requests touch, and a row expired but not yet deleted is
/// already treated as gone by their readers. Each table has its own gate (a singleton of its own type).
/// </summary>
public abstract class UpkeepGate
{
    static readonly TimeSpan Every = TimeSpan.FromMinutes(1);
    readonly Lock gate = new();
    DateTimeOffset last = DateTimeOffset.MinValue;

    /// <summary>Whether this request does the upkeep now.</summary>
    public bool Due(DateTimeOffset now)
    {
        lock (gate)
        {
            if (now - last < Every) return false;
            last = now;
            return true;
        }
    }
}
