using System.Diagnostics;
using DocumentFormat.OpenXml;
using DocumentFormat.OpenXml.Packaging;
using DocumentFormat.OpenXml.Wordprocessing;

namespace EmailTracking.Tests.Content;

/// <summary>
/// Real documents made for the tests: a Word document with the Open XML SDK (one page per explicit page break), a
/// presentation as a flat OpenDocument file, and from them, through LibreOffice itself, the .doc, .ppt, .pptx and PDF
/// forms (LibreOffice writes them as Office would). Made once per test run, in a temporary directory.
/// </summary>
public static class Documents
{
    static readonly Lazy<string> Dir = new(() => Directory.CreateTempSubdirectory("et-docs-").FullName);
    static readonly SemaphoreSlim Gate = new(1, 1);
    static readonly Dictionary<string, byte[]> Made = [];

    public static async Task<byte[]> DocxAsync(int pages) => await MakeAsync($"words-{pages}.docx", path => WriteDocx(path, pages));

    public static async Task<byte[]> DocAsync(int pages) => await ConvertAsync(await DocxAsync(pages), $"words-{pages}.docx", "doc");

    public static async Task<byte[]> PptxAsync(int slides) => await ConvertAsync(await FodpAsync(slides), $"slides-{slides}.fodp", "pptx");

    public static async Task<byte[]> PptAsync(int slides) => await ConvertAsync(await FodpAsync(slides), $"slides-{slides}.fodp", "ppt");

    public static async Task<byte[]> PdfAsync(int pages) => await ConvertAsync(await DocxAsync(pages), $"words-{pages}.docx", "pdf");

    /// <summary>A PDF that opens only with a password (LibreOffice's PDF export encrypts it).</summary>
    public static async Task<byte[]> EncryptedPdfAsync() => await ConvertAsync(await DocxAsync(1), "words-1.docx",
        "pdf:writer_pdf_Export:{\"EncryptFile\":{\"type\":\"boolean\",\"value\":\"true\"},\"DocumentOpenPassword\":{\"type\":\"string\",\"value\":\"secret\"}}",
        "encrypted.pdf");

    /// <summary>
    /// A PDF of <paramref name="pages"/> pages, each with a picture of its own, made by LibreOffice — which lists every
    /// page's pictures in one resource dictionary shared by all pages.
    /// </summary>
    public static async Task<byte[]> PicturesPdfAsync(int pages) =>
        await ConvertAsync(await PicturesFodtAsync(pages), $"pictures-{pages}.fodt", "pdf");

    /// <summary>A Word document (.docx, written by LibreOffice) with <paramref name="pages"/> pictures embedded in it.</summary>
    public static async Task<byte[]> PicturesDocxAsync(int pages) =>
        await ConvertAsync(await PicturesFodtAsync(pages), $"pictures-{pages}.fodt", "docx");

    /// <summary>
    /// A Word 97 document (.doc) whose one picture is not in it but linked to <paramref name="url"/> (LibreOffice writes
    /// it as an INCLUDEPICTURE field). LibreOffice looks the link up while writing it: have nothing there yet.
    /// </summary>
    public static async Task<byte[]> LinkedPictureDocAsync(string url)
    {
        var name = $"linked-{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(url)))[..12]}.fodt";
        var fodt = await MakeAsync(name, path => File.WriteAllText(path,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" +
            "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" " +
            "xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" " +
            "xmlns:svg=\"urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0\" office:version=\"1.3\" office:mimetype=\"application/vnd.oasis.opendocument.text\">" +
            "<office:body><office:text><text:p>A linked picture follows.</text:p><text:p><draw:frame text:anchor-type=\"as-char\" svg:width=\"4cm\" svg:height=\"4cm\">" +
            $"<draw:image xlink:href=\"{System.Security.SecurityElement.Escape(url)}\" xlink:type=\"simple\" xlink:show=\"embed\" xlink:actuate=\"onLoad\"/>" +
            "</draw:frame></text:p></office:text></office:body></office:document>"));
        return await ConvertAsync(fodt, name, "doc");
    }

    /// <summary>
    /// A two-page PDF, made by LibreOffice, whose first page has selectable text, a link to a web page
    /// (<see cref="LinkTarget"/>) and a link to a bookmark on the second page.
    /// </summary>
    public static async Task<byte[]> LinksPdfAsync() => await ConvertAsync(await LinksFodtAsync(), "links.fodt", "pdf");

    public const string LinkTarget = "https://encom.test/pricing";

    static Task<byte[]> LinksFodtAsync() => MakeAsync("links.fodt", path => File.WriteAllText(path,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" +
        "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:style=\"urn:oasis:names:tc:opendocument:xmlns:style:1.0\" " +
        "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" xmlns:fo=\"urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0\" " +
        "xmlns:xlink=\"http://www.w3.org/1999/xlink\" office:version=\"1.3\" office:mimetype=\"application/vnd.oasis.opendocument.text\">" +
        "<office:automatic-styles><style:style style:name=\"P2\" style:family=\"paragraph\"><style:paragraph-properties fo:break-before=\"page\"/></style:style>" +
        "</office:automatic-styles><office:body><office:text>" +
        "<text:p>Quarterly pricing for the grid</text:p>" +
        $"<text:p>The figures are on <text:a xlink:type=\"simple\" xlink:href=\"{LinkTarget}\">our price list</text:a>.</text:p>" +
        "<text:p>The terms are in <text:a xlink:type=\"simple\" xlink:href=\"#Appendix\">the appendix</text:a>.</text:p>" +
        "<text:p text:style-name=\"P2\"><text:bookmark text:name=\"Appendix\"/>Appendix: terms and conditions</text:p>" +
        "</office:text></office:body></office:document>"));

    static Task<byte[]> PicturesFodtAsync(int pages) => MakeAsync($"pictures-{pages}.fodt", path =>
    {
        var body = new System.Text.StringBuilder();
        for (var i = 1; i <= pages; i++)
        {
            var style = i == 1 ? "P1" : "P2";
            body.Append($"<text:p text:style-name=\"{style}\">Page {i}</text:p><text:p><draw:frame text:anchor-type=\"as-char\" svg:width=\"8cm\" svg:height=\"8cm\">")
                .Append("<draw:image><office:binary-data>").Append(Convert.ToBase64String(Bitmap(64, 64, (byte)(i * 40), (byte)(255 - i * 30), 90)))
                .Append("</office:binary-data></draw:image></draw:frame></text:p>");
        }
        File.WriteAllText(path,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" +
            "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:style=\"urn:oasis:names:tc:opendocument:xmlns:style:1.0\" " +
            "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" " +
            "xmlns:fo=\"urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0\" xmlns:svg=\"urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0\" " +
            "office:version=\"1.3\" office:mimetype=\"application/vnd.oasis.opendocument.text\"><office:automatic-styles>" +
            "<style:style style:name=\"P1\" style:family=\"paragraph\"/>" +
            "<style:style style:name=\"P2\" style:family=\"paragraph\"><style:paragraph-properties fo:break-before=\"page\"/></style:style>" +
            "</office:automatic-styles><office:body><office:text>" + body + "</office:text></office:body></office:document>");
    });

    /// <summary>
    /// A Word document whose relationships part holds about <paramref name="relsBytes"/> bytes of relationships with
    /// random ids: it compresses about 10:1, like an ordinary one, so it passes the zip-bomb limits however large it is.
    /// </summary>
    public static byte[] HugeRelationshipsDocx(long relsBytes)
    {
        using var ms = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            void Text(string name, string text)
            {
                using var w = new StreamWriter(zip.CreateEntry(name).Open());
                w.Write(text);
            }
            Text("[Content_Types].xml", "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>");
            Text("word/document.xml", "<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body/></w:document>");
            using var rels = new StreamWriter(zip.CreateEntry("word/_rels/document.xml.rels", System.IO.Compression.CompressionLevel.Optimal).Open());
            rels.Write("<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">");
            var random = new Random(1);
            for (long written = 0; written < relsBytes; written += 48)
                rels.Write($"<Relationship Id=\"r{random.Next(0x1000000):x6}\" Type=\"t\" Target=\"m\"/>");
            rels.Write("</Relationships>");
        }
        return ms.ToArray();
    }

    /// <summary>A plain-colour 24-bit BMP (the simplest picture format LibreOffice reads).</summary>
    public static byte[] Bitmap(int width, int height, byte r, byte g, byte b)
    {
        var row = (width * 3 + 3) & ~3;
        var size = 54 + row * height;
        var bmp = new byte[size];
        "BM"u8.CopyTo(bmp);
        BitConverter.GetBytes(size).CopyTo(bmp, 2);
        BitConverter.GetBytes(54).CopyTo(bmp, 10);
        BitConverter.GetBytes(40).CopyTo(bmp, 14);
        BitConverter.GetBytes(width).CopyTo(bmp, 18);
        BitConverter.GetBytes(height).CopyTo(bmp, 22);
        BitConverter.GetBytes((short)1).CopyTo(bmp, 26);
        BitConverter.GetBytes((short)24).CopyTo(bmp, 28);
        BitConverter.GetBytes(row * height).CopyTo(bmp, 34);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var at = 54 + y * row + x * 3;
                // A gradient, so that the picture is not one flat colour a PDF writer might turn into a rectangle.
                bmp[at] = (byte)(b + x);
                bmp[at + 1] = (byte)(g - y);
                bmp[at + 2] = r;
            }
        }
        return bmp;
    }

    /// <summary>
    /// A password-protected Word or PowerPoint file, encrypted as Office does (ECMA-376 agile encryption: the package
    /// inside an OLE compound file) by tests/tools/encrypt-office.mjs, which test.sh installs with npm.
    /// </summary>
    public static async Task<byte[]> EncryptedAsync(byte[] office, string extension)
    {
        var work = Directory.CreateTempSubdirectory("et-enc-").FullName;
        try
        {
            var input = Path.Combine(work, "plain" + extension);
            var output = Path.Combine(work, "locked" + extension);
            await File.WriteAllBytesAsync(input, office);
            var tools = Path.Combine(Infrastructure.ServerProcess.RepoRoot, "tests", "tools");
            var info = new ProcessStartInfo("node", [Path.Combine(tools, "encrypt-office.mjs"), input, output, "secret"])
            {
                RedirectStandardError = true,
                WorkingDirectory = tools,
            };
            using var p = Process.Start(info)!;
            var error = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, $"encrypt-office.mjs failed (run `npm ci` in tests/tools): {error}");
            return await File.ReadAllBytesAsync(output);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    static Task<byte[]> FodpAsync(int slides) => MakeAsync($"slides-{slides}.fodp", path =>
    {
        var pages = string.Concat(Enumerable.Range(1, slides).Select(i =>
            $"<draw:page draw:name=\"p{i}\"><draw:frame svg:x=\"2cm\" svg:y=\"2cm\" svg:width=\"20cm\" svg:height=\"3cm\"><draw:text-box><text:p>Slide {i} of {slides}</text:p></draw:text-box></draw:frame></draw:page>"));
        File.WriteAllText(path,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" +
            "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" " +
            "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" xmlns:svg=\"urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0\" " +
            "xmlns:presentation=\"urn:oasis:names:tc:opendocument:xmlns:presentation:1.0\" office:version=\"1.2\" " +
            "office:mimetype=\"application/vnd.oasis.opendocument.presentation\"><office:body><office:presentation>" + pages +
            "</office:presentation></office:body></office:document>");
    });

    static void WriteDocx(string path, int pages)
    {
        using var doc = WordprocessingDocument.Create(path, WordprocessingDocumentType.Document);
        var main = doc.AddMainDocumentPart();
        var body = new Body();
        for (var i = 1; i <= pages; i++)
        {
            body.Append(new Paragraph(new Run(new Text($"Proposal, page {i} of {pages}. ") { Space = SpaceProcessingModeValues.Preserve })));
            if (i < pages) body.Append(new Paragraph(new Run(new Break { Type = BreakValues.Page })));
        }
        main.Document = new Document(body);
        main.Document.Save();
    }

    static async Task<byte[]> MakeAsync(string name, Action<string> write)
    {
        await Gate.WaitAsync();
        try
        {
            if (Made.TryGetValue(name, out var done)) return done;
            var path = Path.Combine(Dir.Value, name);
            write(path);
            return Made[name] = await File.ReadAllBytesAsync(path);
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <param name="filter">LibreOffice's --convert-to argument (an extension, optionally with filter options).</param>
    static async Task<byte[]> ConvertAsync(byte[] source, string sourceName, string filter, string? resultName = null)
    {
        var ext = filter.Split(':')[0];
        resultName ??= Path.GetFileNameWithoutExtension(sourceName) + "." + ext;
        await Gate.WaitAsync();
        try
        {
            if (Made.TryGetValue(resultName, out var done)) return done;
            var work = Directory.CreateTempSubdirectory("et-lo-").FullName;
            try
            {
                var input = Path.Combine(work, sourceName);
                await File.WriteAllBytesAsync(input, source);
                var info = new ProcessStartInfo("soffice")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    ArgumentList =
                    {
                        "--headless", "--norestore", "--nolockcheck", "-env:UserInstallation=" + new Uri(Path.Combine(work, "profile") + "/").AbsoluteUri,
                        "--convert-to", filter, "--outdir", Path.Combine(work, "out"), input,
                    },
                };
                info.Environment["HOME"] = work;
                using var p = Process.Start(info)!;
                var output = p.StandardOutput.ReadToEndAsync();
                var error = p.StandardError.ReadToEndAsync();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
                await p.WaitForExitAsync(timeout.Token);
                var result = Path.Combine(work, "out", Path.GetFileNameWithoutExtension(sourceName) + "." + ext);
                Assert.True(File.Exists(result), $"LibreOffice made no {ext} from {sourceName}: {await output} {await error}");
                return Made[resultName] = await File.ReadAllBytesAsync(result);
            }
            finally
            {
                Directory.Delete(work, recursive: true);
            }
        }
        finally
        {
            Gate.Release();
        }
    }
}
