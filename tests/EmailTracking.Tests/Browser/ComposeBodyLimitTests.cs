using System.Net;
using System.Text.RegularExpressions;
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
        using var web = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false }) { BaseAddress = new Uri(baseUrl) };
        await SignInTests.PostLoginAsync(web, new() { ["Email"] = user.Email, ["Password"] = Password });
        var page = await web.GetStringAsync("/compose");
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
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
