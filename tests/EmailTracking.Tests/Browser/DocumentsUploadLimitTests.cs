using System.Net;
using EmailTracking.Data;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A server whose documents may weigh 4 MB (so an upload's form may weigh 5 MB), with the server's own defaults scaled
/// down so that small uploads cross them: Kestrel's limit on a request body at 3,000,000 bytes (its default is
/// 30,000,000) and the form reader's limit on one part at 2 MB (its default is 128 MB). A page that leaves either in
/// force refuses, with small files, what it refuses in production with files of 30 or 128 MB.
/// </summary>
public sealed class DocumentsUploadLimitApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public const long MaxUploadBytes = 4 * 1024 * 1024;

    protected override void Configure(IWebHostBuilder builder)
    {
        builder.UseSetting("Content:MaxUploadBytes", MaxUploadBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.ConfigureKestrel(o => o.Limits.MaxRequestBodySize = 3_000_000);
        builder.ConfigureServices(s => s.Configure<FormOptions>(o => o.MultipartBodyLengthLimit = 2 * 1024 * 1024));
    }
}

/// <summary>
/// Uploads to the Documents page and to POST /api/content on a real Kestrel server: a file the limit allows is read
/// whatever the server's defaults; a post over the limit is answered 413 at once, naming the limit (the web app's
/// error page for a browser, a problem for anything else), and leaves no file and no row behind.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class DocumentsUploadLimitTests : InProcessBrowserTest<DocumentsUploadLimitApp>
{
    const string Explained = "Nothing was uploaded. Documents may weigh up to 4 MB.";

    Task<(HttpClient Web, string Token)> SignedInAsync(TestUser user) => SignedInWithTokenAsync(user, "/documents");

    static MultipartFormDataContent Form(string token, long fileBytes, bool measured = true)
    {
        var form = new MultipartFormDataContent { { new StringContent(token), "__RequestVerificationToken" }, { new StringContent("true"), "allowDownload" } };
        form.Add(new ZerosContent(fileBytes, measured), "file", "Proposal.pdf");
        return form;
    }

    static async Task<(HttpResponseMessage Res, string Html)> PostAsync(HttpClient web, MultipartFormDataContent form, string accept)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/documents?handler=Upload") { Content = form };
        request.Headers.Accept.ParseAdd(accept);
        var res = await web.SendAsync(request);
        return (res, WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync()));
    }

    const string BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    void AssertNothingLeft(TestUser user)
    {
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
        var tmp = Path.Combine(app.ContentDir, "tmp");
        Assert.True(!Directory.Exists(tmp) || Directory.GetFileSystemEntries(tmp).Length == 0, "a work directory was left behind");
    }

    [Fact]
    public async Task A_file_under_the_limit_but_over_kestrels_default_is_read_and_judged_by_the_page()
    {
        var user = await app.NewUserAsync(password: Password);
        var (web, token) = await SignedInAsync(user);
        // 3.5 MB: over the server's body limit (3,000,000 bytes), under the documents' 4 MB.
        var (res, html) = await PostAsync(web, Form(token, 3584 * 1024), BrowserAccept);
        Assert.True(res.StatusCode == HttpStatusCode.UnsupportedMediaType, $"{(int)res.StatusCode}: {html}");
        Assert.Contains("id=\"upload-problem\"", html);
        Assert.Contains("Upload a PDF, Word (.doc, .docx) or PowerPoint (.ppt, .pptx) file.", html);
        AssertNothingLeft(user);
    }

    [Fact]
    public async Task A_file_under_the_limit_but_over_the_form_readers_default_part_is_read_and_judged_by_the_page()
    {
        var user = await app.NewUserAsync(password: Password);
        var (web, token) = await SignedInAsync(user);
        // 2.5 MB: under the server's body limit, over the form reader's limit on one part (2 MB), under the documents' 4 MB.
        var (res, html) = await PostAsync(web, Form(token, 2560 * 1024), BrowserAccept);
        Assert.True(res.StatusCode == HttpStatusCode.UnsupportedMediaType, $"{(int)res.StatusCode}: {html}");
        Assert.Contains("Upload a PDF, Word (.doc, .docx) or PowerPoint (.ppt, .pptx) file.", html);
        AssertNothingLeft(user);
    }

    [Fact]
    public async Task Over_the_limit_a_browsers_post_gets_the_page_explaining_it_and_another_client_a_problem()
    {
        var user = await app.NewUserAsync(password: Password);
        var (web, token) = await SignedInAsync(user);
        // 6 MB: over the 5 MB the upload's form may weigh.
        var (res, html) = await PostAsync(web, Form(token, 6 * 1024 * 1024), BrowserAccept);
        Assert.True(res.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)res.StatusCode}: {html}");
        Assert.Equal("text/html", res.Content.Headers.ContentType?.MediaType);
        Assert.Contains("The document was too large to upload", html);
        Assert.Contains(Explained, html);
        Assert.Contains("href=\"/documents\" id=\"back-to-documents\"", html);
        Assert.Contains("<nav>", html);

        var (apiRes, text) = await PostAsync(web, Form(token, 6 * 1024 * 1024), "application/json");
        Assert.True(apiRes.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)apiRes.StatusCode}: {text}");
        Assert.Equal("application/problem+json", apiRes.Content.Headers.ContentType?.MediaType);
        var problem = System.Text.Json.JsonDocument.Parse(text).RootElement;
        Assert.Equal(413, problem.GetProperty("status").GetInt32());
        Assert.Equal(Explained, problem.GetProperty("detail").GetString());
        AssertNothingLeft(user);
    }

    [Fact]
    public async Task Sent_without_a_length_an_upload_over_the_limit_gets_the_same_page_not_a_bare_400()
    {
        var user = await app.NewUserAsync(password: Password);
        var (web, token) = await SignedInAsync(user);
        // Chunked: nothing to refuse it by until Kestrel has read past the 5 MB the upload's form may weigh.
        using var form = Form(token, 6 * 1024 * 1024, measured: false);
        Assert.Null(form.Headers.ContentLength);
        var (res, html) = await PostAsync(web, form, BrowserAccept);
        Assert.True(res.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)res.StatusCode}: {html}");
        Assert.Contains("The document was too large to upload", html);
        Assert.Contains(Explained, html);
        AssertNothingLeft(user);
    }

    [Fact]
    public async Task Far_over_the_limit_the_api_answers_a_problem_naming_the_limit_not_a_broken_connection()
    {
        var user = await app.NewUserAsync();
        using var api = new HttpClient { BaseAddress = new Uri(baseUrl) };
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", user.Token);
        using var form = new MultipartFormDataContent();
        form.Add(new ZerosContent(24 * 1024 * 1024), "file", "huge.pdf");
        var res = await api.PostAsync("/api/content", form);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)res.StatusCode}: {text}");
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Explained, System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString());
        AssertNothingLeft(user);

        // Just over the file's limit, under the form's: read, and refused by the library, also naming the limit.
        using var over = new MultipartFormDataContent();
        over.Add(new ZerosContent(DocumentsUploadLimitApp.MaxUploadBytes + 1), "file", "over.pdf");
        var overRes = await api.PostAsync("/api/content", over);
        var overText = await overRes.Content.ReadAsStringAsync();
        Assert.True(overRes.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)overRes.StatusCode}: {overText}");
        Assert.Contains("Files up to 4 MB are taken.", System.Text.Json.JsonDocument.Parse(overText).RootElement.GetProperty("detail").GetString());
        AssertNothingLeft(user);
    }

    [Fact]
    public async Task A_solo_plan_upload_over_the_servers_default_gets_the_plans_problem_not_a_broken_connection()
    {
        var user = await app.NewUserAsync(plan: Plan.Solo);
        using var api = new HttpClient { BaseAddress = new Uri(baseUrl) };
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", user.Token);
        using var form = new MultipartFormDataContent();
        // Far over the server's body limit (3,000,000 bytes here): refused before it is read, the rest drained.
        form.Add(new ZerosContent(24 * 1024 * 1024), "file", "Proposal.pdf");
        var res = await api.PostAsync("/api/content", form);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Forbidden, $"{(int)res.StatusCode}: {text}");
        Assert.Contains("Team plan", text);
        AssertNothingLeft(user);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_document_over_the_limit_gets_the_web_apps_page_saying_nothing_was_uploaded(bool script)
    {
        var user = await app.NewUserAsync(password: Password);
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1024, Height = 768 }, JavaScriptEnabled = script });
        var page = await context.NewPageAsync();
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", user.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");

        await page.GotoAsync(baseUrl + "/documents");
        await page.SetInputFilesAsync("input[type=file]", [new FilePayload { Name = "Deck.pdf", MimeType = "application/pdf", Buffer = new byte[6 * 1024 * 1024] }]);
        var response = await page.RunAndWaitForResponseAsync(() => page.ClickAsync("#upload-form button[type=submit]"),
            r => r.Url.Contains("/documents?handler=Upload", StringComparison.Ordinal) && r.Request.Method == "POST");
        Assert.Equal(413, response.Status);
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("The document was too large to upload");
        await Assertions.Expect(page.Locator("#upload-too-large")).ToHaveTextAsync(Explained);
        await Assertions.Expect(page.Locator("header.top nav")).ToBeVisibleAsync();
        await Chromium.ShotAsync(page, script ? "documents-too-large" : "documents-too-large-no-script");

        await page.ClickAsync("#back-to-documents");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/documents");
        await Assertions.Expect(page.Locator("#upload-form")).ToBeVisibleAsync();
        AssertNothingLeft(user);
    }
}
