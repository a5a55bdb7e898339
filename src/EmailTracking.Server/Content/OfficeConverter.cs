using EmailTracking.Data;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Content;

/// <summary>
/// Word and PowerPoint to PDF through LibreOffice headless: its own profile directory per conversion (two
/// conversions never share a profile, which LibreOffice cannot take), a deadline, and the process tree killed on
/// overrun. A limited number run at once.
/// </summary>
/// <remarks>
/// An uploaded document must not make the server fetch anything: a picture linked by URL would otherwise be fetched
/// from the server's network (internal services, cloud metadata) or read from its disk (file://) and end up in the
/// uploader's PDF. Three layers, each enough for what it covers: a 2007+ package is rewritten without its external
/// relationships (<see cref="OfficePackageSanitizer"/>); the profile tells LibreOffice to load nothing a document links
/// to, to update no links and to run no macros (this covers .doc and .ppt too); and LibreOffice runs in a network
/// namespace of its own, with no network at all, where the system allows it (<see cref="ContentOptions.ConversionNetworkIsolation"/>).
/// </remarks>
public sealed class OfficeConverter(IOptions<ContentOptions> options, ConversionSlots slots, ILogger<OfficeConverter> log)
{
    readonly Lazy<Task<bool>> isolationWorks = new(() => ProbeIsolationAsync(options.Value, log));

    /// <param name="Busy">No conversion slot came free in time (<see cref="ConversionSlots"/>): nothing was tried.</param>
    public sealed record Result(string? PdfPath, string? Error, bool Busy = false);

    /// <summary>
    /// The profile's settings (written before LibreOffice first starts with it): links to pictures and other files from
    /// a document are blocked (BlockUntrustedRefererLinks: only trusted locations may, and there are none), Writer and
    /// Calc never update links (Writer 0 = never; Calc 1 = never), and no macro runs.
    /// </summary>
    internal const string ProfileSettings = """
        <?xml version="1.0" encoding="UTF-8"?>
        <oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
        <item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop></item>
        <item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop></item>
        <item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>3</value></prop></item>
        <item oor:path="/org.openoffice.Office.Writer/Content/Update"><prop oor:name="Link" oor:op="fuse"><value>0</value></prop></item>
        <item oor:path="/org.openoffice.Office.Calc/Content/Update"><prop oor:name="Link" oor:op="fuse"><value>1</value></prop></item>
        </oor:items>
        """;

    static readonly string[] IsolationArguments = ["--user", "--map-root-user", "--net", "--"];

    /// <param name="input">The file, named with the extension of its sniffed type (LibreOffice picks its filter by it).</param>
    /// <param name="workDirectory">A directory of this upload's own; the profile and output go there.</param>
    public async Task<Result> ConvertAsync(string input, ContentFileType type, string workDirectory, CancellationToken ct)
    {
        var o = options.Value;
        var kind = type is ContentFileType.Ppt or ContentFileType.Pptx ? "presentation" : "document";
        var damaged = $"The {kind} could not be converted to PDF: it is damaged or password-protected. Open it in Office, save an unprotected copy (or a PDF), and upload that.";
        var profile = Path.Combine(workDirectory, "lo-profile");
        var output = Path.Combine(workDirectory, "lo-out");
        Directory.CreateDirectory(output);
        Directory.CreateDirectory(Path.Combine(profile, "user"));
        await File.WriteAllTextAsync(Path.Combine(profile, "user", "registrymodifications.xcu"), ProfileSettings, ct);

        // The package is read and rewritten under the conversion's slot too: that takes memory and a core in the server's
        // own process, and uploads arriving together must not multiply it without end any more than LibreOffice's.
        if (!await slots.EnterAsync(ct)) return new(null, slots.BusyText, Busy: true);
        string program = o.SofficePath;
        ExternalTool.Outcome outcome;
        try
        {
            if (type is ContentFileType.Docx or ContentFileType.Pptx)
            {
                var inputs = Directory.CreateDirectory(Path.Combine(workDirectory, "lo-in")).FullName;
                var sanitized = Path.Combine(inputs, Path.GetFileName(input));
                try
                {
                    var r = OfficePackageSanitizer.Sanitize(input, sanitized);
                    if (r.Dropped > 0) log.LogInformation("Dropped {Count} external link(s) from a {Type} before converting it", r.Dropped, type);
                }
                catch (OfficePackageSanitizer.PartTooLargeException e)
                {
                    log.LogWarning("A {Type} was refused: {Error}", type, e.Message);
                    return new(null, $"The {kind} was refused. {e.Message} Open it in Office, save a new copy (or a PDF), and upload that.");
                }
                catch (Exception e) when (e is InvalidDataException or IOException)
                {
                    log.LogWarning("A {Type} was not converted: {Error}", type, e.Message);
                    return new(null, damaged);
                }
                input = sanitized;
            }

            List<string> arguments =
            [
                "--headless", "--invisible", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
                "-env:UserInstallation=" + new Uri(profile + "/").AbsoluteUri,
                "--convert-to", "pdf", "--outdir", output, input,
            ];
            if (o.ConversionNetworkIsolation != NetworkIsolation.Off)
            {
                if (await isolationWorks.Value)
                {
                    arguments.InsertRange(0, [.. IsolationArguments, program]);
                    program = o.UnsharePath;
                }
                else if (o.ConversionNetworkIsolation == NetworkIsolation.Required)
                {
                    return new(null, "Word and PowerPoint files cannot be converted on this server: it is set to convert them only without network access, which this system does not allow (ask your administrator). PDF files work.");
                }
            }

            outcome = await ExternalTool.RunAsync(program, arguments, o.ConversionTimeout, workDirectory,
                new Dictionary<string, string> { ["HOME"] = workDirectory }, ct, (long)Math.Max(0, o.ConversionMemoryLimitMegabytes) * 1024 * 1024);
        }
        finally
        {
            slots.Release();
        }

        // unshare starts but cannot run LibreOffice: as good as not installed (126 not executable, 127 not found).
        var notFound = program != o.SofficePath && outcome is { Started: true, TimedOut: false, ExitCode: 126 or 127 };
        if (!outcome.Started || notFound)
        {
            log.LogError("LibreOffice could not be started ({Program}): {Error}", o.SofficePath, outcome.Output);
            return new(null, $"Word and PowerPoint files cannot be converted on this server: LibreOffice is not installed (ask your administrator to install libreoffice-writer-nogui and libreoffice-impress-nogui). PDF files work.");
        }
        if (outcome.TimedOut)
        {
            log.LogWarning("LibreOffice overran {Timeout} converting a {Type} and was killed", o.ConversionTimeout, type);
            return new(null, $"Converting the {kind} took longer than {o.ConversionTimeout.TotalSeconds:0} seconds and was stopped. Save it as PDF yourself and upload the PDF.");
        }
        // Killed by a signal (the shell reports 128 + its number): with a memory cap, LibreOffice aborts when an
        // allocation or a thread's stack is refused. Its own failures on a damaged file end with 1 or without a PDF.
        if (o.ConversionMemoryLimitMegabytes > 0 && outcome.ExitCode > 128)
        {
            log.LogWarning("LibreOffice stopped on a {Type} (exit {Code}), likely at its {Limit} MB memory cap: {Output}", type, outcome.ExitCode,
                o.ConversionMemoryLimitMegabytes, outcome.Output);
            return new(null, $"The {kind} could not be converted to PDF: converting it needs more than the {o.ConversionMemoryLimitMegabytes} MB of memory this server allows a conversion. Save it as PDF yourself and upload the PDF, or ask your administrator to raise Content:ConversionMemoryLimitMegabytes.");
        }
        var pdf = Path.Combine(output, Path.GetFileNameWithoutExtension(input) + ".pdf");
        if (outcome.ExitCode != 0 || !File.Exists(pdf) || new FileInfo(pdf).Length == 0)
        {
            log.LogWarning("LibreOffice failed on a {Type} (exit {Code}): {Output}", type, outcome.ExitCode, outcome.Output);
            return new(null, damaged);
        }
        return new(pdf, null);
    }

    /// <summary>Whether unshare can give a process a network namespace of its own here (once per server run).</summary>
    static async Task<bool> ProbeIsolationAsync(ContentOptions o, ILogger log)
    {
        var probe = await ExternalTool.RunAsync(o.UnsharePath, [.. IsolationArguments, "true"], TimeSpan.FromSeconds(10), null, null, CancellationToken.None);
        if (probe is { Started: true, TimedOut: false, ExitCode: 0 }) return true;
        var why = probe.Started ? probe.Output.Trim() : $"{o.UnsharePath} not found ({probe.Output})";
        if (o.ConversionNetworkIsolation == NetworkIsolation.Required)
            log.LogError("Word and PowerPoint conversion is refused: LibreOffice must run without network (Content:ConversionNetworkIsolation = Required) and `{Unshare} --user --map-root-user --net` does not work here: {Why}", o.UnsharePath, why);
        else
            log.LogWarning("LibreOffice runs WITH network access: `{Unshare} --user --map-root-user --net` does not work here ({Why}). External links in documents are still removed and blocked; allow unprivileged user namespaces (or set Content:ConversionNetworkIsolation = Off to silence this)", o.UnsharePath, why);
        return false;
    }
}
