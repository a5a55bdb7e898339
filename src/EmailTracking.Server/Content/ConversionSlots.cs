using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// The conversion slots: how many uploads work on a Word or PowerPoint file at once, across all uploads
/// (<see cref="ContentOptions.MaxConcurrentConversions"/>). Unpacking a package to check it (<see cref="ContentSniffer"/>),
/// rewriting it without its external links (<see cref="OfficePackageSanitizer"/>) and LibreOffice's conversion each take
/// a core for a while, so uploads arriving together wait their turn here rather than all running at once. A wait lasts
/// at most <see cref="ContentOptions.ConversionQueueTimeout"/>, and ends when the request is cancelled.
/// </summary>
public sealed class ConversionSlots(IOptions<ContentOptions> options)
{
    readonly SemaphoreSlim slots = new(Math.Max(1, options.Value.MaxConcurrentConversions));

    /// <summary>What an upload that waited too long for a slot is told (503).</summary>
    public string BusyText => $"The server is busy with other Word and PowerPoint uploads and found no room for this one within " +
        $"{Web.PlainText.Duration(options.Value.ConversionQueueTimeout)}. Nothing was added: upload it again in a minute (a PDF needs no conversion).";

    /// <summary>
    /// Waits for a slot: true once it is taken (release it with <see cref="Release"/>), false when none came free within
    /// <see cref="ContentOptions.ConversionQueueTimeout"/>. Throws <see cref="OperationCanceledException"/> when the request
    /// is cancelled meanwhile, having taken nothing.
    /// </summary>
    public Task<bool> EnterAsync(CancellationToken ct) => slots.WaitAsync(options.Value.ConversionQueueTimeout, ct);

    public void Release() => slots.Release();
}

/// <summary>
/// The content pipeline's meter (<see cref="MeterName"/>), made through the host's <see cref="IMeterFactory"/> so that
/// each server (and each test's server) has its own: what an operator's metrics collector reads, and what tests count.
/// </summary>
public sealed class ContentMetrics
{
    public const string MeterName = "EmailTracking.Content";
    public const string UnpackingsName = "emailtracking.content.unpackings";

    readonly UpDownCounter<int> unpackings;

    public ContentMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        unpackings = meter.CreateUpDownCounter<int>(UnpackingsName, "{unpacking}",
            "Word and PowerPoint packages being unpacked at this moment to check them (bounded by the conversion slots)");
    }

    /// <summary>Counts one unpacking until the answer is disposed.</summary>
    public IDisposable Unpacking()
    {
        unpackings.Add(1);
        return new Counted(unpackings);
    }

    sealed class Counted(UpDownCounter<int> counter) : IDisposable
    {
        int done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 0) counter.Add(-1);
        }
    }
}
