using System.Globalization;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// Renders page thumbnails with Poppler's pdftoppm; without it, documents simply have none. Each thumbnail is
/// <see cref="ContentOptions.ThumbnailWidth"/> wide and at most three times as tall: scaled to the width, a page of
/// absurd proportions (1 × 14,400 points) would be millions of pixels tall and take gigabytes, so only its top is
/// rendered. Renders take a <see cref="PdfToolSlots"/> slot and are capped in memory.
/// </summary>
public sealed class Thumbnailer(IOptions<ContentOptions> options, PdfToolSlots slots, ILogger<Thumbnailer> log)
{
    /// <summary>Renders the first pages into <paramref name="directory"/> as 1.png, 2.png, …; answers how many.</summary>
    public async Task<int> RenderAsync(string pdf, int pageCount, string directory, CancellationToken ct)
    {
        var o = options.Value;
        var last = Math.Min(pageCount, o.MaxThumbnails);
        if (last < 1) return 0;
        Directory.CreateDirectory(directory);
        var prefix = Path.Combine(directory, "p");
        var width = o.ThumbnailWidth.ToString(CultureInfo.InvariantCulture);
        var height = (3 * o.ThumbnailWidth).ToString(CultureInfo.InvariantCulture);
        // -x/-y/-W/-H render only that part of the scaled page: pdftoppm never allocates more than width × height.
        var outcome = await slots.RunAsync(() => ExternalTool.RunAsync(o.PdftoppmPath,
        [
            "-png", "-f", "1", "-l", last.ToString(CultureInfo.InvariantCulture),
            "-scale-to-x", width, "-scale-to-y", "-1", "-x", "0", "-y", "0", "-W", width, "-H", height, pdf, prefix,
        ], o.ThumbnailTimeout, directory, null, ct, (long)o.ToolMemoryLimitMegabytes * 1024 * 1024), ct);
        if (!outcome.Started)
        {
            log.LogWarning("No thumbnails: {Program} is not installed (Debian: poppler-utils)", o.PdftoppmPath);
            return 0;
        }
        if (outcome.TimedOut || outcome.ExitCode != 0)
        {
            log.LogWarning("Thumbnails failed (exit {Code}, timed out {TimedOut}): {Output}", outcome.ExitCode, outcome.TimedOut, outcome.Output);
        }
        // pdftoppm pads page numbers to the width of the last one (p-01.png …): rename to the plain number. A render
        // that failed or was killed can leave an empty or cut-short file: only a whole PNG counts, the rest goes.
        var count = 0;
        foreach (var file in Directory.GetFiles(directory, "p-*.png"))
        {
            var digits = Path.GetFileNameWithoutExtension(file)[2..];
            if (!IsWholePng(file))
            {
                File.Delete(file);
            }
            else if (int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var page))
            {
                File.Move(file, Path.Combine(directory, page.ToString(CultureInfo.InvariantCulture) + ".png"));
                count++;
            }
        }
        // Only an unbroken run from page 1 counts, so "thumbnail N exists" follows from N <= count.
        var run = 0;
        while (run < count && File.Exists(Path.Combine(directory, (run + 1).ToString(CultureInfo.InvariantCulture) + ".png"))) run++;
        return run;
    }

    /// <summary>A PNG written to the end: the signature first and the IEND chunk last (an empty or cut file has not both).</summary>
    static bool IsWholePng(string path)
    {
        ReadOnlySpan<byte> signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        ReadOnlySpan<byte> end = [0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82];
        using var f = File.OpenRead(path);
        if (f.Length < signature.Length + end.Length) return false;
        Span<byte> head = stackalloc byte[8];
        Span<byte> tail = stackalloc byte[12];
        f.ReadExactly(head);
        f.Seek(-tail.Length, SeekOrigin.End);
        f.ReadExactly(tail);
        return head.SequenceEqual(signature) && tail.SequenceEqual(end);
    }
}
