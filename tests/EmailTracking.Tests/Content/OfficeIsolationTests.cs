using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Xml.Linq;
using EmailTracking.Data;
using EmailTracking.Server.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace EmailTracking.Tests.Content;

/// <summary>
/// Converting an uploaded Word or PowerPoint file touches neither the network nor files outside its work directory: a
/// picture linked by URL is not fetched (a listener of the test's own sees no connection at all) and a picture linked
/// to a local file is not read; neither ends up in the PDF. Each layer is tried on its own where it can be: with the
/// network namespace off, the package rewrite and LibreOffice's profile still stop the links.
/// </summary>
public sealed class OfficeIsolationTests
{
    [Theory]
    [InlineData(NetworkIsolation.Auto)]
    [InlineData(NetworkIsolation.Off)]
    public async Task A_docx_picture_linked_by_url_is_not_fetched_and_not_in_the_pdf(NetworkIsolation isolation)
    {
        using var trap = new LinkTrap();
        var docx = LinkedPictureDocx(trap.Url("/metadata.bmp"));
        var pdf = await ConvertAsync(docx, ContentFileType.Docx, new ContentOptions { ConversionNetworkIsolation = isolation });
        Assert.Empty(trap.Requests);
        Assert.Equal(0, await ImageCountAsync(pdf));
    }

    [Theory]
    [InlineData(NetworkIsolation.Auto)]
    [InlineData(NetworkIsolation.Off)]
    public async Task A_docx_picture_linked_to_a_local_file_is_not_in_the_pdf(NetworkIsolation isolation)
    {
        using var secret = new SecretPicture();
        var pdf = await ConvertAsync(LinkedPictureDocx(secret.Url), ContentFileType.Docx, new ContentOptions { ConversionNetworkIsolation = isolation });
        Assert.Equal(0, await ImageCountAsync(pdf));
    }

    [Fact]
    public async Task A_picture_linked_through_a_relationship_typed_as_a_hyperlink_is_not_fetched()
    {
        using var trap = new LinkTrap();
        var docx = LinkedPictureDocx(trap.Url("/hyperlink.bmp"), Hyperlink);
        var pdf = await ConvertAsync(docx, ContentFileType.Docx, new ContentOptions { ConversionNetworkIsolation = NetworkIsolation.Off });
        Assert.Empty(trap.Requests);
        Assert.Equal(0, await ImageCountAsync(pdf));
    }

    [Theory]
    [InlineData(NetworkIsolation.Auto)]
    [InlineData(NetworkIsolation.Off)]
    public async Task A_pptx_picture_linked_by_url_or_to_a_local_file_is_not_fetched_and_not_in_the_pdf(NetworkIsolation isolation)
    {
        using var trap = new LinkTrap();
        using var secret = new SecretPicture();
        var options = new ContentOptions { ConversionNetworkIsolation = isolation };
        foreach (var url in new[] { trap.Url("/slide.bmp"), secret.Url })
        {
            var pdf = await ConvertAsync(await LinkedPicturePptxAsync(url), ContentFileType.Pptx, options);
            Assert.Equal(0, await ImageCountAsync(pdf));
        }
        Assert.Empty(trap.Requests);
    }

    [Fact]
    public async Task A_doc_picture_linked_by_url_makes_no_connection_at_all_when_libreoffice_has_no_network()
    {
        Assert.True(await IsolationWorksAsync(), "this test needs `unshare --user --map-root-user --net` (unprivileged user namespaces)");
        using var trap = new LinkTrap();
        var doc = await Documents.LinkedPictureDocAsync(trap.Url("/word97.bmp"));
        trap.Arm();
        var pdf = await ConvertAsync(doc, ContentFileType.Doc, new ContentOptions { ConversionNetworkIsolation = NetworkIsolation.Required });
        // A .doc cannot be rewritten, and LibreOffice's own block still lets it ask the server OPTIONS: only the
        // network namespace stops that.
        Assert.Empty(trap.Requests);
        Assert.Equal(0, await ImageCountAsync(pdf));
    }

    [Fact]
    public async Task A_doc_picture_linked_to_a_local_file_is_not_in_the_pdf_even_with_network()
    {
        var dir = Directory.CreateTempSubdirectory("et-secret-").FullName;
        try
        {
            var path = Path.Combine(dir, "secret.bmp");
            // Made while the file is not there, so that LibreOffice keeps the link instead of the picture.
            var doc = await Documents.LinkedPictureDocAsync(new Uri(path).AbsoluteUri);
            await File.WriteAllBytesAsync(path, Documents.Bitmap(64, 64, 200, 30, 30));
            var pdf = await ConvertAsync(doc, ContentFileType.Doc, new ContentOptions { ConversionNetworkIsolation = NetworkIsolation.Off });
            Assert.Equal(0, await ImageCountAsync(pdf));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task An_embedded_picture_still_ends_up_in_the_pdf()
    {
        var pdf = await ConvertAsync(await Documents.PicturesDocxAsync(1), ContentFileType.Docx, new ContentOptions());
        Assert.Equal(1, await ImageCountAsync(pdf));
    }

    [Fact]
    public async Task Without_unshare_auto_still_converts_without_fetching_and_required_refuses()
    {
        using var trap = new LinkTrap();
        var docx = LinkedPictureDocx(trap.Url("/fallback.bmp"));
        var missing = "/nonexistent/et-test/unshare";
        var pdf = await ConvertAsync(docx, ContentFileType.Docx, new ContentOptions { UnsharePath = missing });
        Assert.Equal(0, await ImageCountAsync(pdf));
        Assert.Empty(trap.Requests);

        var work = Directory.CreateTempSubdirectory("et-conv-").FullName;
        try
        {
            var input = Path.Combine(work, "original.docx");
            await File.WriteAllBytesAsync(input, docx);
            var converter = Converter(new ContentOptions { UnsharePath = missing, ConversionNetworkIsolation = NetworkIsolation.Required });
            var result = await converter.ConvertAsync(input, ContentFileType.Docx, work, CancellationToken.None);
            Assert.Null(result.PdfPath);
            Assert.Contains("without network access", result.Error);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    // The package rewrite on its own, without LibreOffice.

    [Fact]
    public void The_rewrite_drops_external_relationships_but_keeps_hyperlinks_and_everything_else()
    {
        var settingsRels = Rels(
            ("rId1", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate", "http://169.254.169.254/latest/meta-data/t.dotx", "External"),
            ("rId2", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles", "styles.xml", null));
        var docRels = Rels(
            ("rId1", Image, "file:///etc/secret.png", "External"),
            ("rId2", Hyperlink, "https://encom.test/pricing", "External"),
            ("rId3", Hyperlink, "http://10.0.0.1/admin.png", "External"),
            ("rId4", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/oleObject", "\\\\server\\share\\x.xlsx", "external"),
            ("rId5", Image, "file:///etc/secret.png", null),
            ("rId6", Image, "media/image1.png", null),
            ("rId7", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/subDocument", "http://intranet/sub.docx", "External"));
        var document = Doc(
            "<w:p><w:hyperlink r:id=\"rId2\"><w:r><w:t>pricing</w:t></w:r></w:hyperlink></w:p>" +
            "<w:p><w:r><w:drawing><a:blip r:link=\"rId3\"/><a:blip r:embed=\"rId6\"/></w:drawing></w:r></w:p>");
        var png = new byte[] { 0x89, 0x50, 0x4E, 0x47, 1, 2, 3 };
        var package = Zip(
            ("[Content_Types].xml", Encoding.UTF8.GetBytes(ContentTypes)),
            ("_rels/.rels", Encoding.UTF8.GetBytes(Rels(("rId1", OfficeDocument, "word/document.xml", null), ("rId9", Image, "http://127.0.0.1/x.png", "External")))),
            ("word/document.xml", Encoding.UTF8.GetBytes(document)),
            ("word/_rels/document.xml.rels", Encoding.UTF8.GetBytes(docRels)),
            ("word/_rels/settings.xml.rels", Encoding.UTF8.GetBytes(settingsRels)),
            ("word/media/image1.png", png));

        var (result, rewritten) = Sanitize(package);

        Assert.Equal(new OfficePackageSanitizer.Result(Dropped: 7, KeptHyperlinks: 1), result);
        Assert.Equal(["rId2", "rId6"], Ids(rewritten["word/_rels/document.xml.rels"]));
        Assert.Equal(["rId2"], Ids(rewritten["word/_rels/settings.xml.rels"]));
        Assert.Equal(["rId1"], Ids(rewritten["_rels/.rels"]));
        Assert.Equal(png, rewritten["word/media/image1.png"]);
        Assert.Equal(Encoding.UTF8.GetBytes(document), rewritten["word/document.xml"]);
    }

    [Theory]
    [InlineData("word/_rels/Document.xml.rels")]
    [InlineData("word//_rels/./document.xml.rels")]
    [InlineData("word\\_rels\\document.xml.rels")]
    public void The_rewrite_refuses_two_entries_with_one_name(string second)
    {
        var rels = Encoding.UTF8.GetBytes(Rels(("rId1", OfficeDocument, "word/document.xml", null)));
        var package = Zip(("[Content_Types].xml", Encoding.UTF8.GetBytes(ContentTypes)), ("_rels/.rels", rels), ("word/document.xml", Encoding.UTF8.GetBytes(Doc(""))),
            ("word/_rels/document.xml.rels", Encoding.UTF8.GetBytes(Rels())), (second, Encoding.UTF8.GetBytes(Rels(("rId1", Image, "http://x/", "External")))));
        Assert.Throws<InvalidDataException>(() => Sanitize(package));
    }

    [Fact]
    public void The_rewrite_refuses_a_relationships_part_larger_than_any_real_one_without_holding_it_in_memory()
    {
        // Real relationships parts hold a few KB. One of 60 MB of random ids packs to 6 MB and passes the sniffer's
        // zip-bomb limits; read whole into an XDocument it took 470 MB of the server's own memory.
        var package = Documents.HugeRelationshipsDocx(60L * 1024 * 1024);
        var dir = Directory.CreateTempSubdirectory("et-sniff-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(dir, "big.docx"), package);
            Assert.Equal(ContentFileType.Docx, ContentSniffer.Sniff(Path.Combine(dir, "big.docx"), new ContentOptions()).Type);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var refused = Assert.Throws<OfficePackageSanitizer.PartTooLargeException>(() => Sanitize(package));
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Contains("word/_rels/document.xml.rels", refused.Message);
        Assert.Contains("4 MB", refused.Message);
        Assert.True(allocated < 64L * 1024 * 1024, $"allocated {allocated / 1048576} MB to refuse it");
    }

    const string Image = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image";
    const string Hyperlink = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink";
    const string OfficeDocument = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument";

    const string ContentTypes = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>" +
        "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>" +
        "<Default Extension=\"xml\" ContentType=\"application/xml\"/><Default Extension=\"png\" ContentType=\"image/png\"/>" +
        "<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";

    static string Rels(params (string Id, string Type, string Target, string? Mode)[] relationships) =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">" +
        string.Concat(relationships.Select(r => $"<Relationship Id=\"{r.Id}\" Type=\"{r.Type}\" Target=\"{System.Security.SecurityElement.Escape(r.Target)}\"" +
            (r.Mode is null ? "" : $" TargetMode=\"{r.Mode}\"") + "/>")) + "</Relationships>";

    static string Doc(string body) =>
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" " +
        "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\" xmlns:wp=\"http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing\" " +
        "xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\" xmlns:pic=\"http://schemas.openxmlformats.org/drawingml/2006/picture\"><w:body>" + body + "</w:body></w:document>";

    /// <summary>A minimal Word document whose one picture is <c>&lt;a:blip r:link&gt;</c> to <paramref name="url"/>.</summary>
    internal static byte[] LinkedPictureDocx(string url, string relationshipType = Image) => Zip(
        ("[Content_Types].xml", Encoding.UTF8.GetBytes(ContentTypes)),
        ("_rels/.rels", Encoding.UTF8.GetBytes(Rels(("rId1", OfficeDocument, "word/document.xml", null)))),
        ("word/document.xml", Encoding.UTF8.GetBytes(Doc(
            "<w:p><w:r><w:t>A linked picture follows.</w:t></w:r></w:p><w:p><w:r><w:drawing><wp:inline><wp:extent cx=\"952500\" cy=\"952500\"/><wp:docPr id=\"1\" name=\"P\"/>" +
            "<a:graphic><a:graphicData uri=\"http://schemas.openxmlformats.org/drawingml/2006/picture\"><pic:pic><pic:nvPicPr><pic:cNvPr id=\"1\" name=\"P\"/><pic:cNvPicPr/></pic:nvPicPr>" +
            "<pic:blipFill><a:blip r:link=\"rId5\"/></pic:blipFill><pic:spPr><a:xfrm><a:off x=\"0\" y=\"0\"/><a:ext cx=\"952500\" cy=\"952500\"/></a:xfrm><a:prstGeom prst=\"rect\"/></pic:spPr>" +
            "</pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>"))),
        ("word/_rels/document.xml.rels", Encoding.UTF8.GetBytes(Rels(("rId5", relationshipType, url, "External")))));

    /// <summary>A one-slide presentation (written by LibreOffice) with a picture added whose <c>r:link</c> is <paramref name="url"/>.</summary>
    static async Task<byte[]> LinkedPicturePptxAsync(string url)
    {
        var source = await Documents.PptxAsync(1);
        using var ms = new MemoryStream();
        ms.Write(source);
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Update, leaveOpen: true))
        {
            Patch(zip, "ppt/slides/slide1.xml", xml => xml.Replace("</p:spTree>",
                "<p:pic><p:nvPicPr><p:cNvPr id=\"50\" name=\"Linked\"/><p:cNvPicPr/><p:nvPr/></p:nvPicPr><p:blipFill><a:blip r:link=\"rIdLinked\"/><a:stretch><a:fillRect/></a:stretch></p:blipFill>" +
                "<p:spPr><a:xfrm><a:off x=\"720000\" y=\"2000000\"/><a:ext cx=\"2000000\" cy=\"2000000\"/></a:xfrm><a:prstGeom prst=\"rect\"><a:avLst/></a:prstGeom></p:spPr></p:pic></p:spTree>",
                StringComparison.Ordinal));
            Patch(zip, "ppt/slides/_rels/slide1.xml.rels", xml => xml.Replace("</Relationships>",
                $"<Relationship Id=\"rIdLinked\" Type=\"{Image}\" Target=\"{System.Security.SecurityElement.Escape(url)}\" TargetMode=\"External\"/></Relationships>", StringComparison.Ordinal));
        }
        return ms.ToArray();
    }

    static void Patch(ZipArchive zip, string name, Func<string, string> change)
    {
        var entry = zip.GetEntry(name) ?? throw new InvalidOperationException($"no {name} in the presentation");
        string text;
        using (var r = new StreamReader(entry.Open())) text = r.ReadToEnd();
        var changed = change(text);
        Assert.NotEqual(text, changed);
        entry.Delete();
        using var w = new StreamWriter(zip.CreateEntry(name).Open());
        w.Write(changed);
    }

    static byte[] Zip(params (string Name, byte[] Bytes)[] entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in entries)
            {
                using var s = zip.CreateEntry(name).Open();
                s.Write(bytes);
            }
        }
        return ms.ToArray();
    }

    static (OfficePackageSanitizer.Result, Dictionary<string, byte[]>) Sanitize(byte[] package)
    {
        var dir = Directory.CreateTempSubdirectory("et-sanitize-").FullName;
        try
        {
            var input = Path.Combine(dir, "in.docx");
            var output = Path.Combine(dir, "out.docx");
            File.WriteAllBytes(input, package);
            var result = OfficePackageSanitizer.Sanitize(input, output);
            using var zip = ZipFile.OpenRead(output);
            var entries = zip.Entries.ToDictionary(e => e.FullName, e =>
            {
                using var s = e.Open();
                using var copy = new MemoryStream();
                s.CopyTo(copy);
                return copy.ToArray();
            });
            return (result, entries);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    static List<string> Ids(byte[] rels) =>
        [.. XDocument.Load(new MemoryStream(rels)).Root!.Elements().Select(e => (string)e.Attribute("Id")!)];

    static OfficeConverter Converter(ContentOptions options) => new(Options.Create(options), new ConversionSlots(Options.Create(options)), NullLogger<OfficeConverter>.Instance);

    /// <summary>Converts as an upload does (the file in a work directory of its own) and returns the PDF.</summary>
    static async Task<byte[]> ConvertAsync(byte[] document, ContentFileType type, ContentOptions options)
    {
        var work = Directory.CreateTempSubdirectory("et-conv-").FullName;
        try
        {
            var input = Path.Combine(work, "original" + ContentSniffer.Extension(type));
            await File.WriteAllBytesAsync(input, document);
            var result = await Converter(options).ConvertAsync(input, type, work, CancellationToken.None);
            Assert.True(result.PdfPath is not null, result.Error);
            return await File.ReadAllBytesAsync(result.PdfPath);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    static async Task<bool> IsolationWorksAsync()
    {
        var info = new ProcessStartInfo("unshare", ["--user", "--map-root-user", "--net", "--", "true"]) { RedirectStandardError = true };
        try
        {
            using var p = Process.Start(info)!;
            await p.WaitForExitAsync();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    /// <summary>The pictures in a PDF, as Poppler's pdfimages lists them.</summary>
    internal static async Task<int> ImageCountAsync(byte[] pdf)
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(file, pdf);
            var info = new ProcessStartInfo("pdfimages", ["-list", file]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(info)!;
            var text = await p.StandardOutput.ReadToEndAsync();
            var error = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, $"pdfimages failed: {error}");
            // Two heading lines ("page num type …" and "-----…"), then one line per picture.
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 2;
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>A picture in a temporary folder of its own, outside any conversion's work directory.</summary>
    sealed class SecretPicture : IDisposable
    {
        readonly string dir = Directory.CreateTempSubdirectory("et-secret-").FullName;

        public SecretPicture() => File.WriteAllBytes(Path.Combine(dir, "secret.bmp"), Documents.Bitmap(64, 64, 200, 30, 30));

        public string Url => new Uri(Path.Combine(dir, "secret.bmp")).AbsoluteUri;

        public void Dispose() => Directory.Delete(dir, recursive: true);
    }
}

/// <summary>
/// A listener on the loopback interface standing for an internal service: it notes every connection and request line,
/// and once armed answers every request with a picture (before, 404, so that a document can be made pointing at it).
/// </summary>
public sealed class LinkTrap : IDisposable
{
    readonly TcpListener listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource stop = new();
    readonly List<string> requests = [];
    volatile bool armed;

    public LinkTrap(bool armed = true)
    {
        this.armed = armed;
        listener.Start();
        _ = AcceptAsync();
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

    /// <summary>What came in (the request line, or "connection" for a connection that sent none).</summary>
    public IReadOnlyList<string> Requests
    {
        get { lock (requests) return [.. requests]; }
    }

    /// <summary>Forgets what came in so far and answers with the picture from now on.</summary>
    public void Arm()
    {
        lock (requests) requests.Clear();
        armed = true;
    }

    async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = ServeAsync(client);
        }
    }

    async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            try
            {
                using var reader = new StreamReader(stream, Encoding.ASCII, false, 1024, leaveOpen: true);
                var line = await reader.ReadLineAsync(stop.Token);
                lock (requests) requests.Add(line ?? "connection");
                while (!string.IsNullOrEmpty(await reader.ReadLineAsync(stop.Token))) { }
                var body = armed && line is not null && !line.StartsWith("OPTIONS", StringComparison.Ordinal) ? Documents.Bitmap(64, 64, 30, 200, 30) : [];
                var status = armed ? "200 OK" : "404 Not Found";
                var head = $"HTTP/1.1 {status}\r\nContent-Type: image/bmp\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head), stop.Token);
                await stream.WriteAsync(body, stop.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
        }
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        stop.Dispose();
    }
}

/// <summary>The whole upload: the PDF the uploader reads back holds no linked picture, and nothing was fetched.</summary>
public sealed class OfficeIsolationUploadTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task An_uploaded_docx_with_a_picture_linked_to_an_internal_address_fetches_nothing_and_shows_no_picture()
    {
        using var trap = new LinkTrap();
        var user = await app.NewUserAsync();
        var docx = OfficeIsolationTests.LinkedPictureDocx(trap.Url("/latest/meta-data/picture.bmp"));
        var item = await user.UploadOkAsync(docx, "Proposal.docx", allowDownload: true);
        var pdf = await user.Client.GetByteArrayAsync($"/api/content/{item.GetProperty("id").GetString()}/pdf");
        Assert.Empty(trap.Requests);
        Assert.Equal(0, await OfficeIsolationTests.ImageCountAsync(pdf));

        // Recipients still download the file as uploaded: only the copy LibreOffice read was rewritten.
        var share = await user.ShareLinkAsync(item);
        var visit = System.Text.Json.JsonDocument.Parse(await (await app.Anonymous().PostAsJsonAsync(TestApi.Path(share) + "/visits", new { })).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(docx, await app.Anonymous().GetByteArrayAsync(visit.GetProperty("downloadUrl").GetString()));
    }
}
