using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// How many PDF tools (the PDF check, qpdf's rewrite, pdftoppm's thumbnails) run at once, across all uploads; more
/// wait their turn. Each takes a core and up to <see cref="ContentOptions.ToolMemoryLimitMegabytes"/> of memory, so
/// parallel uploads must not multiply that without end.
/// </summary>
public sealed class PdfToolSlots(IOptions<ContentOptions> options)
{
    readonly SemaphoreSlim slots = new(Math.Max(1, options.Value.MaxConcurrentPdfTools));

    /// <summary>Runs <paramref name="run"/> once a slot is free.</summary>
    public async Task<T> RunAsync<T>(Func<Task<T>> run, CancellationToken ct)
    {
        await slots.WaitAsync(ct);
        try
        {
            return await run();
        }
        finally
        {
            slots.Release();
        }
    }
}
