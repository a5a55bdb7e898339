using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;

namespace EmailTracking.Tests.Content;

/// <summary>Small PDFs written object by object, with a right cross-reference table: hostile ones an attacker would craft.</summary>
public static class HostilePdf
{
    /// <summary>Objects 1, 2, … as given (object 1 is the catalog), with their xref table and trailer.</summary>
    public static byte[] Build(params string[] objects)
    {
        var b = new StringBuilder("%PDF-1.4\n");
        var offsets = new List<int>();
        for (var i = 0; i < objects.Length; i++)
        {
            offsets.Add(b.Length);
            b.Append(CultureInfo.InvariantCulture, $"{i + 1} 0 obj\n{objects[i]}\nendobj\n");
        }
        var xref = b.Length;
        b.Append(CultureInfo.InvariantCulture, $"xref\n0 {objects.Length + 1}\n0000000000 65535 f \n");
        foreach (var offset in offsets) b.Append(CultureInfo.InvariantCulture, $"{offset:D10} 00000 n \n");
        b.Append(CultureInfo.InvariantCulture, $"trailer\n<< /Size {objects.Length + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n");
        return Encoding.ASCII.GetBytes(b.ToString());
    }

    /// <summary>A PDF of <paramref name="pages"/> pages saying "Page N"; <paramref name="count"/> is the root's /Count (right by default).</summary>
    public static byte[] Pages(int pages, string mediaBox = "0 0 612 792", string? count = null)
    {
        var objects = new List<string>
        {
            "<< /Type /Catalog /Pages 2 0 R >>",
            $"<< /Type /Pages /Kids [{string.Join(' ', Enumerable.Range(0, pages).Select(i => $"{3 + i} 0 R"))}] /Count {count ?? pages.ToString(CultureInfo.InvariantCulture)} >>",
        };
        var font = 3 + 2 * pages;
        for (var i = 0; i < pages; i++)
            objects.Add($"<< /Type /Page /Parent 2 0 R /MediaBox [{mediaBox}] /Contents {3 + pages + i} 0 R /Resources << /Font << /F1 {font} 0 R >> >> >>");
        for (var i = 0; i < pages; i++)
        {
            var text = $"BT /F1 24 Tf 72 700 Td (Page {i + 1}) Tj ET";
            objects.Add($"<< /Length {text.Length} >>\nstream\n{text}\nendstream");
        }
        objects.Add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
        return Build([.. objects]);
    }

    /// <summary>One page whose /MediaBox is object 5, and objects 5 onwards: <paramref name="chain"/>.</summary>
    public static byte[] MediaBoxThrough(params string[] chain) => Build(
    [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox 5 0 R /Contents 4 0 R >>",
        "<< /Length 0 >>\nstream\n\nendstream",
        .. chain,
    ]);

    /// <summary>A PNG's width and height, from its header.</summary>
    public static (int Width, int Height) PngSize(byte[] png) =>
        (BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)), BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4)));
}

/// <summary>Crafted PDFs against the real upload endpoint: each is refused or mended, and the server lives on.</summary>
public abstract class HostilePdfTests(AppFactory app)
{
    [Fact]
    public async Task A_PDF_whose_objects_refer_to_themselves_is_refused_as_damaged_and_the_server_lives_on()
    {
        var user = await app.NewUserAsync();
        foreach (var (name, pdf) in new[]
        {
            // 5 0 obj 5 0 R endobj: PdfPig 0.1.16 follows it for ever, and the stack overflow ended the server's process.
            ("self.pdf", HostilePdf.MediaBoxThrough("5 0 R")),
            ("pair.pdf", HostilePdf.MediaBoxThrough("6 0 R", "5 0 R")),
            ("ring.pdf", HostilePdf.MediaBoxThrough("6 0 R", "7 0 R", "5 0 R")),
            // The catalog's page tree itself a loop of references.
            ("pages.pdf", HostilePdf.Build("<< /Type /Catalog /Pages 2 0 R >>", "3 0 R", "2 0 R")),
        })
        {
            var problem = await (await user.Client.UploadAsync(pdf, name)).ProblemAsync();
            Assert.True(problem.Status == 422, $"{name}: {problem.Status} {problem.Title}: {problem.Detail}");
            Assert.Contains("damaged", problem.Detail, StringComparison.Ordinal);
        }
        // Still serving: a list, and a good upload after them.
        Assert.Equal(0, (await user.Client.GetJsonAsync("/api/content")).GetArrayLength());
        var ok = await user.UploadOkAsync(HostilePdf.Pages(2), "fine.pdf");
        Assert.Equal(2, ok.GetProperty("pages").GetInt32());
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));
    }

    [Fact]
    public async Task A_PDF_whose_page_count_is_wrong_is_mended_so_viewers_open_it()
    {
        var user = await app.NewUserAsync();
        foreach (var count in new[] { "0", "-5", "2000000000" })
        {
            var item = await user.UploadOkAsync(HostilePdf.Pages(2, count: count), $"count {count}.pdf");
            Assert.Equal(2, item.GetProperty("pages").GetInt32());
            Assert.Equal(2, item.GetProperty("thumbnails").GetInt32());
            // What recipients get says 2 pages, as pdf.js and Poppler read it (they trust /Count, not the page list).
            var shown = await user.Client.GetByteArrayAsync($"/api/content/{item.GetProperty("id").GetString()}/pdf");
            Assert.Equal("2", await QpdfAsync(shown, "--show-npages"));
        }
    }

    [Fact]
    public async Task Thumbnails_of_absurdly_tall_or_wide_pages_stay_small()
    {
        var user = await app.NewUserAsync();
        // Scaled to 200 px wide, a 10 × 14,400 pt page would be 200 × 288,000 px (1 × 14,400: 2,880,000 px and ~2 GB).
        foreach (var (box, width, height) in new[] { ("0 0 10 14400", 200, 600), ("0 0 14400 10", 200, 1), ("0 0 612 792", 200, 259) })
        {
            var item = await user.UploadOkAsync(HostilePdf.Pages(2, box), "odd.pdf");
            Assert.Equal(2, item.GetProperty("thumbnails").GetInt32());
            for (var page = 1; page <= 2; page++)
            {
                var png = await user.Client.GetByteArrayAsync($"/api/content/{item.GetProperty("id").GetString()}/thumbnails/{page}");
                Assert.Equal((width, height), HostilePdf.PngSize(png));
            }
        }
    }

    [Fact]
    public async Task A_long_name_of_emoji_is_cut_between_characters_and_stored()
    {
        var user = await app.NewUserAsync();
        var name = "ab" + string.Concat(Enumerable.Repeat("\U0001F600", 200)) + ".pdf";
        var item = await user.UploadOkAsync(HostilePdf.Pages(1), name);
        var stored = item.GetProperty("name").GetString()!;
        Assert.Equal("ab" + string.Concat(Enumerable.Repeat("\U0001F600", 124)) + ".pdf", stored);
        Assert.Equal(HttpStatusCode.OK, (await user.Client.GetAsync($"/api/content/{item.GetProperty("id").GetString()}")).StatusCode);
    }

    static async Task<string> QpdfAsync(byte[] pdf, string option)
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(file, pdf);
            var info = new System.Diagnostics.ProcessStartInfo("qpdf", [option, file]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = System.Diagnostics.Process.Start(info)!;
            var text = await p.StandardOutput.ReadToEndAsync();
            await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            return text.Trim();
        }
        finally
        {
            File.Delete(file);
        }
    }
}

public sealed class HostilePdfsOnSqlite(SqliteApp app) : HostilePdfTests(app), IClassFixture<SqliteApp>;

public sealed class HostilePdfsOnPostgres(PostgresApp app) : HostilePdfTests(app), IClassFixture<PostgresApp>;

/// <summary>
/// A server whose "pdftoppm" notes how many copies of it run at once, writes an empty page 1 and fails, as a render
/// that ran out of memory does; and without qpdf.
/// </summary>
public sealed class PdfToolsApp() : AppFactory(DatabaseProvider.Sqlite)
{
    /// <summary>One line per look: how many renders were running.</summary>
    public string Seen => Path.Combine(ContentDir, "renders-seen");

    protected override void Configure(IWebHostBuilder builder)
    {
        var running = Path.Combine(ContentDir, "renders-running");
        var script = Path.Combine(ContentDir, "failing-pdftoppm.sh");
        File.WriteAllText(script,
            "#!/bin/sh\n" +
            $"mkdir -p '{running}'\ntouch '{running}/'$$\nls '{running}' | wc -l >> '{Seen}'\n" +
            $"sleep 1\nls '{running}' | wc -l >> '{Seen}'\nrm '{running}/'$$\n" +
            // The last argument is the output prefix: an empty page 1, then failure.
            "for prefix; do :; done\n: > \"$prefix-1.png\"\nexit 99\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        builder.UseSetting("Content:PdftoppmPath", script);
        builder.UseSetting("Content:QpdfPath", Path.Combine(ContentDir, "no-qpdf-here"));
        builder.UseSetting("Content:MaxConcurrentPdfTools", "1");
    }
}

public sealed class PdfToolLimitsTests(PdfToolsApp app) : IClassFixture<PdfToolsApp>
{
    [Fact]
    public async Task A_failed_render_counts_no_thumbnail_and_renders_run_one_at_a_time()
    {
        var user = await app.NewUserAsync();
        var uploads = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => user.UploadOkAsync(HostilePdf.Pages(i), $"doc {i}.pdf")));
        foreach (var item in uploads)
        {
            // The empty p-1.png the render left is not a thumbnail: none is listed, none is served.
            Assert.Equal(0, item.GetProperty("thumbnails").GetInt32());
            Assert.Equal(HttpStatusCode.NotFound, (await user.Client.GetAsync($"/api/content/{item.GetProperty("id").GetString()}/thumbnails/1")).StatusCode);
        }
        var seen = (await File.ReadAllLinesAsync(app.Seen)).Select(l => int.Parse(l.Trim(), CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(6, seen.Count);
        Assert.Equal(1, seen.Max());
    }

    [Fact]
    public async Task Without_qpdf_to_mend_it_a_PDF_whose_page_count_is_wrong_is_refused()
    {
        var user = await app.NewUserAsync();
        var problem = await (await user.Client.UploadAsync(HostilePdf.Pages(2, count: "0"), "count0.pdf")).ProblemAsync();
        Assert.Equal(422, problem.Status);
        Assert.Contains("list of pages is damaged", problem.Detail, StringComparison.Ordinal);
        Assert.Equal(0, (await user.Client.GetJsonAsync("/api/content")).GetArrayLength());
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));
    }
}

/// <summary>The name a document is listed under.</summary>
public sealed class DisplayNameTests
{
    [Fact]
    public void A_long_name_is_cut_between_whole_characters()
    {
        var emoji = string.Concat(Enumerable.Repeat("\U0001F600", 200));
        var name = EmailTracking.Server.Content.ContentLibrary.DisplayName("ab" + emoji + ".pdf", ContentFileType.Pdf);
        Assert.Equal("ab" + emoji[..248] + ".pdf", name);
        // An accented letter written as e + U+0301 stays whole too.
        var accents = string.Concat(Enumerable.Repeat("e\u0301", 200));
        var cut = EmailTracking.Server.Content.ContentLibrary.DisplayName("ab" + accents + ".pdf", ContentFileType.Pdf);
        Assert.Equal("ab" + accents[..248] + ".pdf", cut);
        Assert.True(cut.Length <= 255);
    }
}
