using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Content;

/// <summary>The library: uploads of each kind, conversion, bad files, the plan, other teams, "add to email".</summary>
public abstract class ContentApiTests(AppFactory app)
{
    [Fact]
    public async Task Word_and_PowerPoint_files_are_converted_with_the_right_page_counts_and_thumbnails()
    {
        var user = await app.NewUserAsync();
        foreach (var (bytes, name, type, pages) in new[]
        {
            (await Documents.DocxAsync(3), "Proposal.docx", "docx", 3),
            (await Documents.DocAsync(2), "Old proposal.doc", "doc", 2),
            (await Documents.PptxAsync(4), "Deck.pptx", "pptx", 4),
            (await Documents.PptAsync(5), "Old deck.ppt", "ppt", 5),
            (await Documents.PdfAsync(6), "Terms.pdf", "pdf", 6),
        })
        {
            var item = await user.UploadOkAsync(bytes, name);
            Assert.Equal(type, item.GetProperty("type").GetString());
            Assert.Equal(pages, item.GetProperty("pages").GetInt32());
            Assert.Equal(name, item.GetProperty("name").GetString());
            Assert.Equal(pages, item.GetProperty("thumbnails").GetInt32());
            var id = item.GetProperty("id").GetString();
            var thumb = await user.Client.GetAsync($"/api/content/{id}/thumbnails/{pages}");
            Assert.Equal(HttpStatusCode.OK, thumb.StatusCode);
            Assert.Equal("image/png", thumb.Content.Headers.ContentType?.MediaType);
            Assert.Equal(HttpStatusCode.NotFound, (await user.Client.GetAsync($"/api/content/{id}/thumbnails/{pages + 1}")).StatusCode);
            var pdf = await user.Client.GetByteArrayAsync($"/api/content/{id}/pdf");
            Assert.StartsWith("%PDF-", Encoding.ASCII.GetString(pdf, 0, 5));
        }
        var list = await user.Client.GetJsonAsync("/api/content");
        Assert.Equal(5, list.GetArrayLength());
        // Nothing is left in the work area.
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));
    }

    [Fact]
    public async Task The_viewers_pdf_gives_each_page_only_its_own_pictures_and_the_download_stays_as_uploaded()
    {
        var user = await app.NewUserAsync();
        var original = await Documents.PicturesPdfAsync(3);
        // LibreOffice's PDF names every page's pictures on every page (one shared resource dictionary)...
        Assert.All(await ImagesPerPageAsync(original), n => Assert.Equal(3, n));
        var item = await user.UploadOkAsync(original, "Pictures.pdf");
        var shown = await user.Client.GetByteArrayAsync($"/api/content/{item.GetProperty("id").GetString()}/pdf");
        // ...the copy the viewer shows names one per page, so pdf.js draws page 1 without fetching the others' pictures.
        Assert.Equal([1, 1, 1], await ImagesPerPageAsync(shown));

        var share = await user.ShareLinkAsync(item);
        var visit = JsonDocument.Parse(await (await app.Anonymous().PostAsJsonAsync(TestApi.Path(share) + "/visits", new { })).Content.ReadAsStringAsync()).RootElement;
        var downloaded = await app.Anonymous().GetByteArrayAsync(visit.GetProperty("downloadUrl").GetString());
        Assert.Equal(original, downloaded);
    }

    /// <summary>How many images each page's resources name, as qpdf lists them.</summary>
    static async Task<List<int>> ImagesPerPageAsync(byte[] pdf)
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(file, pdf);
            var info = new System.Diagnostics.ProcessStartInfo("qpdf", ["--show-pages", "--with-images", file]) { RedirectStandardOutput = true };
            using var p = System.Diagnostics.Process.Start(info)!;
            var text = await p.StandardOutput.ReadToEndAsync();
            await p.WaitForExitAsync();
            var counts = new List<int>();
            foreach (var line in text.Split('\n'))
            {
                if (line.StartsWith("page ", StringComparison.Ordinal)) counts.Add(0);
                // "    /Im4: 4 0 R, 64 x 64" under "  images:"
                else if (line.TrimStart().StartsWith('/') && line.Contains(" 0 R, ", StringComparison.Ordinal) && line.Contains(" x ", StringComparison.Ordinal)) counts[^1]++;
            }
            Assert.NotEmpty(counts);
            return counts;
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task The_same_file_twice_is_stored_once_and_a_misleading_name_gets_the_real_extension()
    {
        var user = await app.NewUserAsync();
        var pdf = await Documents.PdfAsync(2);
        var a = await user.UploadOkAsync(pdf, "a.pdf");
        var b = await user.UploadOkAsync(pdf, "../../etc/passwd.docx");
        Assert.NotEqual(a.GetProperty("id").GetString(), b.GetProperty("id").GetString());
        Assert.Equal("passwd.pdf", b.GetProperty("name").GetString());
        var sha = app.WithDb(db => db.Contents.Where(c => c.TeamId == user.TeamId).Select(c => c.OriginalSha256).Distinct().ToList());
        Assert.Single(sha);
        Assert.True(File.Exists(Path.Combine(app.ContentDir, "objects", sha[0][..2], sha[0])));
    }

    [Fact]
    public async Task Bad_files_get_a_clear_message_and_leave_nothing_behind()
    {
        var user = await app.NewUserAsync();
        var pdf = await Documents.PdfAsync(3);
        var exe = new byte[4096];
        "MZ"u8.CopyTo(exe);
        var elf = new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0 };
        var cases = new (byte[] Bytes, string Name, int Status, string Says)[]
        {
            (exe, "Proposal.pdf", 415, "Windows program"),
            (elf, "Deck.pptx", 415, "Linux program"),
            ([], "empty.pdf", 415, "empty"),
            ("#!/bin/sh\nrm -rf /\n"u8.ToArray(), "run.docx", 415, "script"),
            (pdf[..(pdf.Length / 2)], "cut.pdf", 422, "incomplete"),
            (await Documents.EncryptedPdfAsync(), "locked.pdf", 422, "password-protected"),
            ("%PDF-1.7\n1 0 obj garbage\n%%EOF\n"u8.ToArray(), "broken.pdf", 422, "damaged"),
            (ZipBomb(), "bomb.docx", 415, "zip bomb"),
            (Zip(("hello.txt", "hi")), "archive.docx", 415, "zip archive"),
            (Zip(("[Content_Types].xml", "<Types/>"), ("xl/workbook.xml", "<workbook/>")), "sheet.pptx", 415, "Excel"),
            ("PK\x03\x04 this is not really a zip at all"u8.ToArray(), "damaged.docx", 415, "damaged"),
            (await Documents.EncryptedAsync(await Documents.DocxAsync(2), ".docx"), "locked.docx", 415, "password-protected"),
            (await Documents.EncryptedAsync(await Documents.PptxAsync(2), ".pptx"), "locked.pptx", 415, "password-protected"),
        };
        foreach (var (bytes, name, status, says) in cases)
        {
            var res = await user.Client.UploadAsync(bytes, name);
            var problem = await res.ProblemAsync();
            Assert.True(status == problem.Status, $"{name}: {problem.Status} {problem.Title}: {problem.Detail}");
            Assert.Contains(says, problem.Title + " " + problem.Detail, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(0, (await user.Client.GetJsonAsync("/api/content")).GetArrayLength());
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));

        // Not a form, or a form without the file: a 4xx problem each.
        var json = await user.Client.PostAsJsonAsync("/api/content", new { file = "x" });
        Assert.Equal(415, (await json.ProblemAsync()).Status);
        using var noFile = new MultipartFormDataContent { { new StringContent("true"), "allowDownload" } };
        Assert.Equal(400, (await (await user.Client.PostAsync("/api/content", noFile)).ProblemAsync()).Status);
    }

    [Theory]
    [InlineData("0", false)]
    [InlineData("no", false)]
    [InlineData("OFF", false)]
    [InlineData("false", false)]
    [InlineData("1", true)]
    [InlineData("on", true)]
    public async Task The_download_switch_reads_what_forms_and_scripts_send(string value, bool allowed)
    {
        var user = await app.NewUserAsync();
        var body = await UploadWithSwitchAsync(user, value);
        Assert.Equal(HttpStatusCode.Created, body.StatusCode);
        Assert.Equal(allowed, JsonDocument.Parse(await body.Content.ReadAsStringAsync()).RootElement.GetProperty("allowDownload").GetBoolean());
    }

    [Fact]
    public async Task A_download_switch_it_cannot_read_is_refused_and_nothing_is_stored()
    {
        // "maybe" must not quietly allow downloads that someone meant to forbid.
        var user = await app.NewUserAsync();
        var problem = await (await UploadWithSwitchAsync(user, "maybe")).ProblemAsync();
        Assert.Equal(400, problem.Status);
        Assert.Contains("allowDownload must be true or false", problem.Title, StringComparison.Ordinal);
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
    }

    static async Task<HttpResponseMessage> UploadWithSwitchAsync(TestUser user, string value)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(await Documents.PdfAsync(1));
        file.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pdf");
        form.Add(file, "file", "switch.pdf");
        form.Add(new StringContent(value), "allowDownload");
        return await user.Client.PostAsync("/api/content", form);
    }

    [Fact]
    public async Task A_solo_plan_is_refused_with_what_to_do_and_nothing_half_works()
    {
        var solo = await app.NewUserAsync(plan: Plan.Solo);
        var res = await solo.Client.UploadAsync(await Documents.PdfAsync(2), "Terms.pdf");
        var problem = await res.ProblemAsync();
        Assert.Equal(403, problem.Status);
        Assert.Equal("Tracked content is a Team-plan feature", problem.Title);
        Assert.Contains("et teams plan", problem.Detail);
        Assert.Contains("Files attached to an email the normal way are not affected", problem.Detail);

        // A team that goes back to solo keeps its library but cannot make new document links.
        var team = await app.NewUserAsync();
        var item = await team.UploadOkAsync(await Documents.PdfAsync(2), "Terms.pdf");
        await app.WithDbAsync(async db =>
        {
            var t = await db.Teams.FirstAsync(x => x.Id == team.TeamId);
            t.Plan = Plan.Solo;
            await db.SaveChangesAsync();
        });
        var link = await team.Client.PostAsync($"/api/content/{item.GetProperty("id").GetString()}/links", null);
        Assert.Equal(403, (await link.ProblemAsync()).Status);
    }

    [Fact]
    public async Task Another_teams_documents_are_404_on_every_endpoint()
    {
        var owner = await app.NewUserAsync();
        var other = await app.NewUserAsync();
        var id = (await owner.UploadOkAsync(await Documents.PdfAsync(2), "Terms.pdf")).GetProperty("id").GetString();
        foreach (var (method, path) in new[]
        {
            ("GET", $"/api/content/{id}"), ("PATCH", $"/api/content/{id}"), ("DELETE", $"/api/content/{id}"),
            ("POST", $"/api/content/{id}/links"), ("GET", $"/api/content/{id}/pdf"), ("GET", $"/api/content/{id}/thumbnails/1"),
            ("GET", $"/api/content/{id}/stats"),
        })
        {
            var req = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "PATCH") req.Content = JsonContent.Create(new { allowDownload = false });
            Assert.Equal(HttpStatusCode.NotFound, (await other.Client.SendAsync(req)).StatusCode);
        }
        Assert.Equal(0, (await other.Client.GetJsonAsync("/api/content")).GetArrayLength());
        Assert.Equal(HttpStatusCode.OK, (await owner.Client.GetAsync($"/api/content/{id}")).StatusCode);
    }

    [Fact]
    public async Task Add_to_email_gives_each_recipient_a_link_of_their_own_and_leaves_other_links_alone()
    {
        var user = await app.NewUserAsync();
        var item = await user.UploadOkAsync(await Documents.PdfAsync(3), "Proposal.pdf");
        var res = await user.Client.PostAsync($"/api/content/{item.GetProperty("id").GetString()}/links", null);
        var link = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var share = link.GetProperty("url").GetString()!;
        Assert.StartsWith("http://localhost/d/", share);
        Assert.Contains("Proposal.pdf (3 pages)", link.GetProperty("html").GetString());

        var html = $"<p>Our proposal: {link.GetProperty("html").GetString()} and <a href=\"https://example.com/pricing\">pricing</a></p>";
        var reg = await user.RegisterSimpleAsync(html, to: ["alan@encom.test", "flynn@encom.test"]);
        var copies = reg.GetProperty("copies").EnumerateArray().ToList();
        Assert.Equal(2, copies.Count);
        var tokens = copies.Select(c => ContentTestApi.DocumentLinks(c.GetProperty("html").GetString()!).Single()).Select(ContentTestApi.Token).ToList();
        Assert.Equal(2, tokens.Distinct().Count());
        Assert.DoesNotContain(ContentTestApi.Token(share), tokens);
        foreach (var c in copies)
        {
            // The pricing link is click-tracked as before; the document link is not a click URL.
            Assert.Single(c.GetProperty("links").EnumerateArray());
            Assert.Contains("/c/", c.GetProperty("html").GetString());
        }
        var rows = app.WithDb(db => db.ContentLinks.Where(l => tokens.Contains(l.Token)).ToList());
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.NotNull(r.RecipientId));
        Assert.All(rows, r => Assert.Equal(reg.GetProperty("id").GetGuid(), r.TrackedMessageId));

        // Another team's share link in a body is just a link: it is click-tracked, never turned into a document link.
        var stranger = await app.NewUserAsync();
        var theirs = await stranger.RegisterSimpleAsync($"<a href=\"{share}\">x</a>");
        Assert.Empty(ContentTestApi.DocumentLinks(theirs.GetProperty("copies")[0].GetProperty("html").GetString()!));
    }

    [Fact]
    public async Task Renaming_forbidding_downloads_and_removing_a_document()
    {
        var user = await app.NewUserAsync();
        // A document no other test uploads, so that its files are this entry's alone.
        var item = await user.UploadOkAsync(await Documents.PdfAsync(5), "Terms.pdf");
        var id = item.GetProperty("id").GetString();
        var patched = await user.Client.PatchAsJsonAsync($"/api/content/{id}", new { name = "Terms 2027", allowDownload = false });
        var body = JsonDocument.Parse(await patched.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Terms 2027.pdf", body.GetProperty("name").GetString());
        Assert.False(body.GetProperty("allowDownload").GetBoolean());
        var bad = await user.Client.PatchAsJsonAsync($"/api/content/{id}", new { name = " " });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var share = await user.ShareLinkAsync(item);
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/content/{id}")).StatusCode);
        Assert.Equal(0, (await user.Client.GetJsonAsync("/api/content")).GetArrayLength());
        var gone = await app.Anonymous().PostAsJsonAsync(TestApi.Path(share) + "/visits", new { });
        Assert.Equal(410, (int)gone.StatusCode);
        Assert.Equal(410, (int)(await app.Anonymous().GetAsync(TestApi.Path(share))).StatusCode);
        var (sha, shown) = app.WithDb(db => db.Contents.Where(c => c.Id == Guid.Parse(id!)).Select(c => new Tuple<string, string>(c.OriginalSha256, c.PdfSha256)).Single());
        Assert.False(File.Exists(Path.Combine(app.ContentDir, "objects", sha[..2], sha)));
        Assert.False(File.Exists(Path.Combine(app.ContentDir, "objects", shown[..2], shown)));
        Assert.False(Directory.Exists(Path.Combine(app.ContentDir, "thumbs", shown)));
    }

    /// <summary>A .docx-shaped zip whose one big part is a few hundred MB of zeros.</summary>
    static byte[] ZipBomb()
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            using (var w = new StreamWriter(zip.CreateEntry("[Content_Types].xml").Open())) w.Write("<Types/>");
            using (var w = new StreamWriter(zip.CreateEntry("word/document.xml").Open())) w.Write("<document/>");
            using var s = zip.CreateEntry("word/media/image1.bin", CompressionLevel.SmallestSize).Open();
            var zeros = new byte[1024 * 1024];
            for (var i = 0; i < 64; i++) s.Write(zeros);
        }
        return ms.ToArray();
    }

    static byte[] Zip(params (string Name, string Text)[] entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, text) in entries)
            {
                using var w = new StreamWriter(zip.CreateEntry(name).Open());
                w.Write(text);
            }
        }
        return ms.ToArray();
    }
}

public sealed class ContentApiOnSqlite(SqliteApp app) : ContentApiTests(app), IClassFixture<SqliteApp>;

public sealed class ContentApiOnPostgres(PostgresApp app) : ContentApiTests(app), IClassFixture<PostgresApp>;
