using System.Net;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.AspNetCore.Hosting;

namespace EmailTracking.Tests.Browser;

/// <summary>The Compose server with room for 8 MB of attachments: its posts may weigh 2 × 8 + 16 = 32 MB.</summary>
public sealed class ComposeEightMegabyteApp() : ComposePageApp(EmailTracking.Data.DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("Mailboxes:MaxAttachmentBytes", (8 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// On a real Kestrel server, a Compose post without script is read up to the page's own limit (twice the attachments'
/// limit and 16 MB more), not cut off at Kestrel's default of 30,000,000 bytes, which antiforgery used to read under.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ComposeBodyLimitTests : InProcessBrowserTest<ComposeEightMegabyteApp>
{
    [Fact]
    public async Task A_post_over_kestrels_default_but_under_the_pages_limit_gets_the_page_naming_the_file()
    {
        var user = await app.NewUserAsync(password: Password);
        var (web, token) = await SignedInWithTokenAsync(user, "/compose");
        using var _ = web;
        using var content = new MultipartFormDataContent
        {
            { new StringContent(token), "__RequestVerificationToken" }, { new StringContent("alan@encom.test"), "To" }, { new StringContent("Big"), "Subject" },
        };
        content.Add(new ByteArrayContent(new byte[31 * 1024 * 1024]), "Files", "big.bin");
        var res = await web.PostAsync("/compose", content);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.Contains("big.bin takes the attachments past 8 MB in all (31 MB with it)", html);
        Assert.Contains("id=\"Subject\" value=\"Big\"", html);
    }
}

/// <summary>The Compose server with room for 64 MB of attachments: its posts may weigh 2 × 64 + 16 = 144 MB, and one file more than the form reader's default 128 MB.</summary>
public sealed class ComposeSixtyFourMegabyteApp() : ComposePageApp(EmailTracking.Data.DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("Mailboxes:MaxAttachmentBytes", (64 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// Zeros of a given length, written a megabyte at a time: a large upload without holding it in memory. Not
/// <paramref name="measured"/>: sent without a Content-Length (chunked), as a client streaming what it has not measured.
/// </summary>
sealed class ZerosContent(long length, bool measured = true) : HttpContent
{
    protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
    {
        var chunk = new byte[1024 * 1024];
        for (var left = length; left > 0; left -= chunk.Length) await stream.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, left)));
    }

    protected override bool TryComputeLength(out long length)
    {
        length = this.length;
        return measured;
    }

    readonly long length = length;
}

/// <summary>
/// With Mailboxes:MaxAttachmentBytes raised to 64 MB, the form reader's limit on one part follows it: a 129 MB file
/// (over the form reader's default of 128 MB, under the page's 144 MB) is named by the page as over the attachments'
/// limit, not cut off by the form reader (which antiforgery then answered with a bare 400).
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ComposeRaisedLimitTests : InProcessBrowserTest<ComposeSixtyFourMegabyteApp>
{
    [Fact]
    public async Task A_file_past_the_form_readers_default_is_read_to_the_pages_own_limit_and_named()
    {
        var user = await app.NewUserAsync(password: Password);
        var (web, token) = await SignedInWithTokenAsync(user, "/compose");
        using var _ = web;
        using var content = new MultipartFormDataContent
        {
            { new StringContent(token), "__RequestVerificationToken" }, { new StringContent("alan@encom.test"), "To" }, { new StringContent("Bigger"), "Subject" },
        };
        content.Add(new ZerosContent(129L * 1024 * 1024), "Files", "big.bin");
        var res = await web.PostAsync("/compose", content);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"{(int)res.StatusCode}: {html}");
        Assert.Contains("big.bin takes the attachments past 64 MB in all (129 MB with it)", html);
        Assert.Contains("id=\"Subject\" value=\"Bigger\"", html);
    }
}

/// <summary>
/// A Compose post over the page's limit (here 1 MB of attachments: 2 × 1 + 16 = 18 MB), as a browser without script
/// sends it: the web app's page saying what the limit is, that nothing was sent and that the form was not kept, with a
/// way back to Compose; a client that is not a browser's page gets a problem naming the limit. Nothing is sent.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ComposeTooLargeTests : InProcessBrowserTest<ComposePageSqliteApp>
{
    const string Explained = "Nothing was sent. Attachments may weigh up to 1 MB in all, and the whole form up to 18 MB.";

    static byte[] Big() => new byte[19 * 1024 * 1024];

    async Task<(HttpClient Web, MultipartFormDataContent Form)> FormAsync(TestUser user)
    {
        var (web, token) = await SignedInWithTokenAsync(user, "/compose");
        var form = new MultipartFormDataContent
        {
            { new StringContent(token), "__RequestVerificationToken" }, { new StringContent("alan@encom.test"), "To" },
            { new StringContent("Too big"), "Subject" }, { new StringContent("Hello"), "Text" },
        };
        // Past Kestrel's own default limit too (30,000,000 bytes), which it would otherwise close the connection at.
        form.Add(new ZerosContent(45 * 1024 * 1024), "Files", "big.bin");
        return (web, form);
    }

    [Fact]
    public async Task Over_the_limit_a_browsers_post_gets_the_page_explaining_it_and_another_client_a_problem()
    {
        var user = await app.NewUserAsync(password: Password);
        var mailbox = await app.MailboxAsync(user);

        var (web, form) = await FormAsync(user);
        form.Add(new StringContent(mailbox.ToString()), "MailboxId");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/compose") { Content = form };
        request.Headers.Accept.ParseAdd("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        var res = await web.SendAsync(request);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.True(res.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)res.StatusCode}: {html}");
        Assert.Equal("text/html", res.Content.Headers.ContentType?.MediaType);
        Assert.Contains("The message was too large to send", html);
        Assert.Contains(Explained, html);
        Assert.Contains("href=\"/compose\" id=\"back-to-compose\"", html);
        Assert.Contains("<nav>", html);

        var (api, apiForm) = await FormAsync(user);
        using var apiRequest = new HttpRequestMessage(HttpMethod.Post, "/compose") { Content = apiForm };
        apiRequest.Headers.Accept.ParseAdd("application/json");
        var apiRes = await api.SendAsync(apiRequest);
        var text = await apiRes.Content.ReadAsStringAsync();
        Assert.True(apiRes.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)apiRes.StatusCode}: {text}");
        Assert.Equal("application/problem+json", apiRes.Content.Headers.ContentType?.MediaType);
        var problem = System.Text.Json.JsonDocument.Parse(text).RootElement;
        Assert.Equal(413, problem.GetProperty("status").GetInt32());
        Assert.Equal(Explained, problem.GetProperty("detail").GetString());

        Assert.Empty(app.Transport.Sent);
        Assert.False(app.WithDb(db => db.Messages.Any(m => m.UserId == user.Id)));
    }

    static HttpRequestMessage BrowserPost(HttpContent form)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/compose") { Content = form };
        request.Headers.Accept.ParseAdd("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        return request;
    }

    [Fact]
    public async Task A_form_sent_without_a_length_over_the_limit_gets_the_same_page_not_a_bare_400()
    {
        var user = await app.NewUserAsync(password: Password);
        var mailbox = await app.MailboxAsync(user);
        var (web, token) = await SignedInWithTokenAsync(user, "/compose");
        using var _ = web;
        var form = new MultipartFormDataContent
        {
            { new StringContent(token), "__RequestVerificationToken" }, { new StringContent(mailbox.ToString()), "MailboxId" },
            { new StringContent("alan@encom.test"), "To" }, { new StringContent("Streamed"), "Subject" }, { new StringContent("Hello"), "Text" },
        };
        form.Add(new ZerosContent(20 * 1024 * 1024, measured: false), "Files", "big.bin");
        Assert.Null(form.Headers.ContentLength);
        using var request = BrowserPost(form);
        var res = await web.SendAsync(request);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.True(res.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{(int)res.StatusCode}: {html}");
        Assert.Contains("The message was too large to send", html);
        Assert.Contains(Explained, html);
        Assert.Empty(app.Transport.Sent);
        Assert.False(app.WithDb(db => db.Messages.Any(m => m.UserId == user.Id)));
    }

    [Fact]
    public async Task A_message_over_the_body_limit_posted_without_script_comes_back_with_its_field_error_and_the_draft()
    {
        var user = await app.NewUserAsync(password: Password);
        var mailbox = await app.MailboxAsync(user);
        var (web, token) = await SignedInWithTokenAsync(user, "/compose");
        using var _ = web;
        // 5 MB pasted into the plain-text box, posted as the page's form is (multipart): past the form reader's default
        // for a urlencoded value (4 MB), which a multipart form's fields are not held to; under the page's limit.
        using var form = new MultipartFormDataContent
        {
            { new StringContent(token), "__RequestVerificationToken" }, { new StringContent(mailbox.ToString()), "MailboxId" },
            { new StringContent("alan@encom.test"), "To" }, { new StringContent("Long"), "Subject" }, { new StringContent(new string('a', 5 * 1024 * 1024)), "Text" },
        };
        using var request = BrowserPost(form);
        var res = await web.SendAsync(request);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"{(int)res.StatusCode}: {html[..Math.Min(html.Length, 2000)]}");
        Assert.Contains("The HTML body is larger than 2097152 bytes.", html);
        Assert.Contains("id=\"Subject\" value=\"Long\"", html);
        Assert.Contains(new string('a', 5 * 1024 * 1024), html);
        Assert.Empty(app.Transport.Sent);
        Assert.False(app.WithDb(db => db.Messages.Any(m => m.UserId == user.Id)));
    }

    [Fact]
    public async Task Without_script_a_form_over_the_limit_gets_the_web_apps_page_saying_nothing_was_sent_or_kept()
    {
        var user = await app.NewUserAsync(password: Password);
        await app.MailboxAsync(user);
        var context = await browser.NewContextAsync(new Microsoft.Playwright.BrowserNewContextOptions
        {
            ViewportSize = new Microsoft.Playwright.ViewportSize { Width = 1024, Height = 768 }, JavaScriptEnabled = false,
        });
        var page = await context.NewPageAsync();
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", user.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Microsoft.Playwright.Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");

        await page.GotoAsync(baseUrl + "/compose");
        await page.FillAsync("#To", "alan@encom.test");
        await page.FillAsync("#Subject", "The whole grid");
        await page.FillAsync("#Text", "Everything, attached.");
        await page.SetInputFilesAsync("#Files", [new Microsoft.Playwright.FilePayload { Name = "grid.bin", MimeType = "application/octet-stream", Buffer = Big() }]);
        var response = await page.RunAndWaitForResponseAsync(() => page.ClickAsync("#send"), r => r.Url.EndsWith("/compose", StringComparison.Ordinal) && r.Request.Method == "POST");
        Assert.Equal(413, response.Status);
        await Microsoft.Playwright.Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("The message was too large to send");
        await Microsoft.Playwright.Assertions.Expect(page.Locator("#compose-too-large")).ToHaveTextAsync(Explained);
        await Microsoft.Playwright.Assertions.Expect(page.Locator("header.top nav")).ToBeVisibleAsync();
        await Chromium.ShotAsync(page, "compose-too-large-no-script");

        await page.ClickAsync("#back-to-compose");
        await Microsoft.Playwright.Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/compose");
        await Microsoft.Playwright.Assertions.Expect(page.Locator("#Files")).ToBeVisibleAsync();
        Assert.Empty(app.Transport.Sent);
        Assert.False(app.WithDb(db => db.Messages.Any(m => m.UserId == user.Id)));
    }
}
