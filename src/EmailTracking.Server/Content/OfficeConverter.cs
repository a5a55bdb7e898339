using EmailTracking.Data;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// Word and PowerPoint to PDF through LibreOffice headless: its own profile directory per conversion (two
/// conversions never share a profile, which LibreOffice cannot take), a deadline, and the process tree killed on
/// overrun. A limited number run at once.
/// </summary>
public sealed class OfficeConverter(IOptions<ContentOptions> options, ILogger<OfficeConverter> log)
{
    readonly SemaphoreSlim slots = new(Math.Max(1, options.Value.MaxConcurrentConversions));

    public sealed record Result(string? PdfPath, string? Error);

    /// <param name="input">The file, named with the extension of its sniffed type (LibreOffice picks its filter by it).</param>
    /// <param name="workDirectory">A directory of this upload's own; the profile and output go there.</param>
    public async Task<Result> ConvertAsync(string input, ContentFileType type, string workDirectory, CancellationToken ct)
    {
        var o = options.Value;
        var profile = Path.Combine(workDirectory, "lo-profile");
        var output = Path.Combine(workDirectory, "lo-out");
        Directory.CreateDirectory(output);
        await slots.WaitAsync(ct);
        ExternalTool.Outcome outcome;
        try
        {
            outcome = await ExternalTool.RunAsync(o.SofficePath,
            [
                "--headless", "--invisible", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
                "-env:UserInstallation=" + new Uri(profile + "/").AbsoluteUri,
                "--convert-to", "pdf", "--outdir", output, input,
            ], o.ConversionTimeout, workDirectory, new Dictionary<string, string> { ["HOME"] = workDirectory }, ct);
        }
        finally
        {
            slots.Release();
        }

        var kind = type is ContentFileType.Ppt or ContentFileType.Pptx ? "presentation" : "document";
        if (!outcome.Started)
        {
            log.LogError("LibreOffice could not be started ({Program}): {Error}", o.SofficePath, outcome.Output);
            return new(null, $"Word and PowerPoint files cannot be converted on this server: LibreOffice is not installed (ask your administrator to install libreoffice-writer-nogui and libreoffice-impress-nogui). PDF files work.");
        }
        if (outcome.TimedOut)
        {
            log.LogWarning("LibreOffice overran {Timeout} converting a {Type} and was killed", o.ConversionTimeout, type);
            return new(null, $"Converting the {kind} took longer than {o.ConversionTimeout.TotalSeconds:0} seconds and was stopped. Save it as PDF yourself and upload the PDF.");
        }
        var pdf = Path.Combine(output, Path.GetFileNameWithoutExtension(input) + ".pdf");
        if (outcome.ExitCode != 0 || !File.Exists(pdf) || new FileInfo(pdf).Length == 0)
        {
            log.LogWarning("LibreOffice failed on a {Type} (exit {Code}): {Output}", type, outcome.ExitCode, outcome.Output);
            return new(null, $"The {kind} could not be converted to PDF: it is damaged or password-protected. Open it in Office, save an unprotected copy (or a PDF), and upload that.");
        }
        return new(pdf, null);
    }
}
