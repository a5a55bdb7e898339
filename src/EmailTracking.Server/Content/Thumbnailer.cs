using System.Globalization;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>Renders page thumbnails with Poppler's pdftoppm; without it, documents simply have none.</summary>
public sealed class Thumbnailer(IOptions<ContentOptions> options, ILogger<Thumbnailer> log)
{
    /// <summary>Renders the first pages into <paramref name="directory"/> as 1.png, 2.png, …; answers how many.</summary>
    public async Task<int> RenderAsync(string pdf, int pageCount, string directory, CancellationToken ct)
    {
        var o = options.Value;
        var last = Math.Min(pageCount, o.MaxThumbnails);
        if (last < 1) return 0;
        Directory.CreateDirectory(directory);
        var prefix = Path.Combine(directory, "p");
        var outcome = await ExternalTool.RunAsync(o.PdftoppmPath,
        [
            "-png", "-f", "1", "-l", last.ToString(CultureInfo.InvariantCulture),
            "-scale-to-x", o.ThumbnailWidth.ToString(CultureInfo.InvariantCulture), "-scale-to-y", "-1", pdf, prefix,
        ], o.ThumbnailTimeout, directory, null, ct);
        if (!outcome.Started)
        {
            log.LogWarning("No thumbnails: {Program} is not installed (Debian: poppler-utils)", o.PdftoppmPath);
            return 0;
        }
        if (outcome.TimedOut || outcome.ExitCode != 0)
        {
            log.LogWarning("Thumbnails failed (exit {Code}, timed out {TimedOut}): {Output}", outcome.ExitCode, outcome.TimedOut, outcome.Output);
        }
        // pdftoppm pads page numbers to the width of the last one (p-01.png …): rename to the plain number.
        var count = 0;
        foreach (var file in Directory.GetFiles(directory, "p-*.png"))
        {
            var digits = Path.GetFileNameWithoutExtension(file)[2..];
            if (int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var page))
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
}
