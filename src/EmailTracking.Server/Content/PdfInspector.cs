using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using UglyToad.PdfPig;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Parser.Parts;
using UglyToad.PdfPig.Tokenization.Scanner;
using UglyToad.PdfPig.Exceptions;
using UglyToad.PdfPig.Tokens;

namespace EmailTracking.Server.Content;

/// <summary>
/// Checks that a PDF is whole and readable without a password, and counts its pages (PdfPig). PdfPig reads the file in
/// a child process — this server's own program started with <see cref="ChildCommand"/> — because a hostile file can
/// make a parser fail in ways no catch block stops: an object that refers to itself (<c>5 0 obj 5 0 R endobj</c>) sends
/// PdfPig 0.1.16 into endless recursion, and a stack overflow ends the whole process. In the child it ends only the
/// child, whose heap is capped too, and the upload is refused as damaged.
/// </summary>
public sealed class PdfInspector(IOptions<ContentOptions> options, PdfToolSlots slots, ILogger<PdfInspector> log)
{
    /// <summary>The argument that makes the server's program check one PDF and exit (see Program.cs).</summary>
    public const string ChildCommand = "--inspect-pdf";

    /// <param name="PageCountsWrong">
    /// The page tree's /Count entries do not match the pages it holds (say /Count 0 over two pages). PdfPig counts by
    /// walking the tree, but pdf.js and Poppler trust /Count: such a file opens in no viewer until it is rewritten.
    /// </param>
    public sealed record Result(int PageCount, string? Error, bool PageCountsWrong = false);

    public const string Damaged = "The PDF is damaged and cannot be read. Re-export it from the program that made it and upload it again.";

    public async Task<Result> InspectAsync(string path, CancellationToken ct)
    {
        // Readers look for the end-of-file marker in the last kilobyte; a file cut short in transfer lacks it.
        using (var f = File.OpenRead(path))
        {
            var tail = new byte[Math.Min(1024, f.Length)];
            f.Seek(-tail.Length, SeekOrigin.End);
            f.ReadExactly(tail);
            if (tail.AsSpan().IndexOf("%%EOF"u8) < 0)
                return new(0, "The PDF is incomplete (it was cut short, perhaps in a download). Upload the whole file.");
        }

        var o = options.Value;
        var (program, arguments) = ChildCommandLine(Path.GetFullPath(path));
        var environment = new Dictionary<string, string>
        {
            // The heap cap (hex, as .NET reads it): a file that makes PdfPig allocate without end fails the child only.
            ["DOTNET_GCHeapHardLimit"] = ((long)Math.Max(64, o.ToolMemoryLimitMegabytes) * 1024 * 1024).ToString("x", CultureInfo.InvariantCulture),
            // One small heap, not one per core as the server's own settings ask for.
            ["DOTNET_gcServer"] = "0",
            // A process that lives a fraction of a second gains nothing from profile-guided recompilation, whose
            // instrumented code it would pay for: 0.21 s against 0.28 s a check here.
            ["DOTNET_TieredPGO"] = "0",
        };
        var outcome = await slots.RunAsync(() => ExternalTool.RunAsync(program, arguments, o.ThumbnailTimeout,
            Path.GetDirectoryName(Path.GetFullPath(path)), environment, ct), ct);
        if (!outcome.Started)
        {
            log.LogError("The PDF check could not be started ({Program}): {Output}", program, outcome.Output);
            return new(0, "The PDF could not be checked on this server. Ask your administrator to look at the server's log.");
        }
        if (!outcome.TimedOut && outcome.ExitCode == 0 && Parse(outcome.StandardOutput) is { } result) return result;
        // A crash (stack overflow, out of memory) or an overrun: the file is what made PdfPig fail.
        log.LogWarning("The PDF check failed on an upload (exit {Code}, timed out {TimedOut}): {Output}", outcome.ExitCode, outcome.TimedOut, outcome.Output);
        return new(0, Damaged);
    }

    static Result? Parse(string output)
    {
        var line = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (line is null) return null;
        try
        {
            return JsonSerializer.Deserialize<Result>(line);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// How to start this server's program for the check: through the dotnet host that runs it (dotnet run, tests), its
    /// own executable beside it (an app host), or itself (a single-file app).
    /// </summary>
    static (string Program, List<string> Arguments) ChildCommandLine(string pdf)
    {
        var assembly = typeof(PdfInspector).Assembly.Location;
        var host = Environment.ProcessPath;
        if (assembly.Length == 0 && host is not null) return (host, [ChildCommand, pdf]);
        if (host is not null && Path.GetFileNameWithoutExtension(host) == "dotnet") return (host, [assembly, ChildCommand, pdf]);
        var appHost = Path.ChangeExtension(assembly, OperatingSystem.IsWindows() ? ".exe" : null);
        if (File.Exists(appHost)) return (appHost, [ChildCommand, pdf]);
        return ("dotnet", [assembly, ChildCommand, pdf]);
    }

    /// <summary>The child's side: checks <paramref name="path"/> and writes the result as one line of JSON.</summary>
    public static int RunChild(string path)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(Check(path)));
        return 0;
    }

    /// <summary>The check itself, with PdfPig. Run it only in the child process (<see cref="InspectAsync"/>).</summary>
    public static Result Check(string path)
    {
        try
        {
            using var doc = PdfDocument.Open(path, new ParsingOptions { UseLenientParsing = false, SkipMissingFonts = true });
            var pages = doc.NumberOfPages;
            if (pages < 1) return new(0, "The PDF has no pages.");
            // Reading the first page proves the page tree is sound, not just the trailer.
            _ = doc.GetPage(1).Width;
            var root = doc.Structure.Catalog.CatalogDictionary.Get<DictionaryToken>(NameToken.Pages, doc.Structure.TokenScanner);
            return new(pages, null, CountPages(root, doc.Structure.TokenScanner, [], 0) != pages);
        }
        catch (PdfDocumentEncryptedException)
        {
            return new(0, "The PDF is password-protected. Upload a copy without a password.");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A parser fed hostile input may fail in any way; each means the same thing to the user.
            _ = e;
            return new(0, Damaged);
        }
    }

    /// <summary>The pages under the page tree node <paramref name="node"/>, or -1 when a node's /Count says otherwise.</summary>
    static int CountPages(DictionaryToken node, IPdfTokenScanner scanner, HashSet<IndirectReference> seen, int depth)
    {
        if (depth > 256 || !node.TryGet(NameToken.Kids, scanner, out ArrayToken? kids) || kids is null) return -1;
        var total = 0;
        foreach (var kid in kids.Data)
        {
            if (kid is not IndirectReferenceToken reference || !seen.Add(reference.Data)) return -1;
            if (DirectObjectFinder.Get<DictionaryToken>(reference, scanner) is not { } child) return -1;
            var n = child.ContainsKey(NameToken.Kids) ? CountPages(child, scanner, seen, depth + 1) : 1;
            if (n < 0) return -1;
            total += n;
        }
        return node.TryGet(NameToken.Count, scanner, out NumericToken? count) && count is not null && count.Int == total ? total : -1;
    }
}
