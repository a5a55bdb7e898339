using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// Rewrites the PDF the viewer shows so that each page names only the fonts and images it uses (qpdf). LibreOffice
/// gives every page one shared resource dictionary listing everything in the file, and pdf.js loads all of a page's
/// resources before drawing it: without this, page 1 of a 100-page deck waits for all 100 pages' images, and the
/// HTTP Range requests gain nothing. The file as uploaded stays untouched for downloads. Without qpdf, or when it
/// fails, the viewer shows the PDF as it is (slower to first page, otherwise the same).
/// </summary>
public sealed class PdfOptimizer(IOptions<ContentOptions> options, PdfInspector inspector, PdfToolSlots slots, ILogger<PdfOptimizer> log)
{
    /// <summary>The rewritten PDF's path, or null to show the input as it is.</summary>
    /// <param name="inspected">What <see cref="PdfInspector"/> found in <paramref name="pdf"/>.</param>
    public async Task<string?> OptimizeAsync(string pdf, PdfInspector.Result inspected, string workDirectory, CancellationToken ct)
    {
        var o = options.Value;
        var output = Path.Combine(workDirectory, "display.pdf");
        // "--pages . 1-z --" rebuilds the page tree page by page, which is what splits a shared resource dictionary.
        // A page tree whose /Count entries are wrong (which no viewer opens) makes qpdf refuse that ("/Count is wrong
        // after flattening pages tree"); copying the pages into an empty PDF builds a new, right tree, at the cost of
        // the document-level parts (outline, named destinations) that such a broken file rarely has anyway.
        List<string> arguments = inspected.PageCountsWrong
            ? ["--empty", "--remove-unreferenced-resources=yes", "--pages", pdf, "1-z", "--", output]
            : [pdf, "--remove-unreferenced-resources=yes", "--pages", ".", "1-z", "--", output];
        var outcome = await slots.RunAsync(() => ExternalTool.RunAsync(o.QpdfPath, arguments, o.ThumbnailTimeout, workDirectory, null, ct,
            (long)o.ToolMemoryLimitMegabytes * 1024 * 1024), ct);
        if (!outcome.Started)
        {
            log.LogWarning("PDFs are shown as uploaded: {Program} is not installed (Debian: qpdf), so the first page waits for shared resources", o.QpdfPath);
            return null;
        }
        // qpdf exits 3 when it succeeded with warnings (a slightly damaged file it repaired).
        if (outcome.TimedOut || (outcome.ExitCode != 0 && outcome.ExitCode != 3) || !File.Exists(output))
        {
            log.LogWarning("qpdf could not rewrite a PDF (exit {Code}, timed out {TimedOut}): {Output}", outcome.ExitCode, outcome.TimedOut, outcome.Output);
            return null;
        }
        // Never show something other than what was uploaded: the rewrite must read back with the same pages.
        var check = await inspector.InspectAsync(output, ct);
        if (check.Error is not null || check.PageCount != inspected.PageCount || check.PageCountsWrong)
        {
            log.LogWarning("qpdf's rewrite of a PDF did not read back the same ({Pages} pages, {Error}); showing it as uploaded", check.PageCount, check.Error);
            return null;
        }
        return output;
    }
}
