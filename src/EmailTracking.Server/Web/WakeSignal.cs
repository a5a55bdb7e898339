namespace EmailTracking.Server.Web;

/// <summary>
/// Wakes a background loop before its poll interval runs out (something was enrolled, replayed, answered). A loop
/// waits on it with a timeout, so a lost poke delays work, never loses it.
/// </summary>
public abstract class WakeSignal
{
    TaskCompletionSource signal = New();

    static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Poke() => Interlocked.Exchange(ref signal, New()).TrySetResult();

    /// <summary>Returns when poked, when the timeout passes (on the given clock) or when cancelled; never throws.</summary>
    public Task WaitAsync(TimeSpan timeout, TimeProvider clock, CancellationToken ct) =>
        Volatile.Read(ref signal).Task.WaitAsync(timeout, clock, ct).ContinueWith(_ => { }, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
}
