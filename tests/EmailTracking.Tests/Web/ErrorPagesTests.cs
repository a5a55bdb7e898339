using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Web;

/// <summary>
/// A browser that meets a missing page gets a page of the web app (its layout, a sentence, a link back to the messages)
/// with the status kept; the API, asked the same thing, still answers RFC 7807 problem details.
/// </summary>
public sealed class ErrorPagesTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    /// <summary>What Chromium sends when it navigates to a page.</summary>
    const string BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
    const string Password = "Correct-horse-battery-9";

    static async Task<HttpResponseMessage> BrowseAsync(HttpClient client, string path, HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Accept", BrowserAccept);
        return await client.SendAsync(request);
    }

    static async Task AssertErrorPageAsync(HttpResponseMessage res, HttpStatusCode status, string heading, bool signedIn)
    {
        var html = await res.Content.ReadAsStringAsync();
        Assert.True(status == res.StatusCode, $"{(int)res.StatusCode}: {html}");
        Assert.Equal("text/html", res.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<header class=\"top\">", html);
        Assert.Contains("href=\"/css/app.css", html);
        Assert.Contains($"<h1>{heading}</h1>", html);
        Assert.Contains("<a href=\"/\" id=\"back-to-messages\">", html);
        Assert.DoesNotContain("\"title\":", html);
        // Signed in, the page is the app's own: its navigation and the account's sign-out.
        Assert.Equal(signedIn, html.Contains("<a href=\"/documents\">Documents</a>", StringComparison.Ordinal));
        Assert.Equal(signedIn, html.Contains("Sign out", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Another_teams_message_is_a_404_page_in_the_browser_and_a_404_problem_to_the_api()
    {
        var owner = await app.NewUserAsync();
        var message = (await owner.RegisterAsync(new
        {
            from = owner.Email, subject = "Secret MCP plans", to = new[] { "alan@encom.test" }, html = "<p>Hi</p>", sentAt = DateTimeOffset.UtcNow.AddHours(-1),
        })).GetProperty("id").GetGuid();
        var stranger = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, stranger.Email, Password);

        var page = await BrowseAsync(browser, $"/messages/{message}");
        await AssertErrorPageAsync(page, HttpStatusCode.NotFound, "Not found", signedIn: true);
        Assert.DoesNotContain("Secret MCP plans", await page.Content.ReadAsStringAsync());

        // The API: the same problem details as before, whatever the client says it accepts.
        foreach (var accept in new[] { null, "application/json", BrowserAccept })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/messages/{message}");
            if (accept is not null) request.Headers.TryAddWithoutValidation("Accept", accept);
            var api = await stranger.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotFound, api.StatusCode);
            Assert.Equal("application/problem+json", api.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await api.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(404, problem.GetProperty("status").GetInt32());
            Assert.Equal("Not Found", problem.GetProperty("title").GetString());
        }
    }

    [Fact]
    public async Task Unknown_and_malformed_ids_and_unknown_pages_are_404_pages()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        foreach (var path in new[] { $"/messages/{Guid.NewGuid()}", "/messages/not-a-guid", $"/documents/{Guid.NewGuid()}", "/no-such-page" })
        {
            await AssertErrorPageAsync(await BrowseAsync(browser, path), HttpStatusCode.NotFound, "Not found", signedIn: true);
        }
        // A form posted without its antiforgery token (a page left open across a key rotation): refused, as a page.
        await AssertErrorPageAsync(await BrowseAsync(browser, $"/sequences/{Guid.NewGuid()}?handler=Pause", HttpMethod.Post), HttpStatusCode.BadRequest, "That did not work", signedIn: true);
        // The error page's own address is not a page.
        await AssertErrorPageAsync(await BrowseAsync(browser, "/error"), HttpStatusCode.NotFound, "Not found", signedIn: true);
    }

    [Fact]
    public async Task Setup_once_a_user_exists_is_a_404_page_to_anyone()
    {
        await app.NewUserAsync();
        var anonymous = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        await AssertErrorPageAsync(await BrowseAsync(anonymous, "/setup"), HttpStatusCode.NotFound, "Not found", signedIn: false);
    }

    [Fact]
    public async Task Programs_keep_their_answers_on_every_path_they_use()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        // A page asked for by a program (no text/html in Accept) keeps the problem details it had.
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/messages/{Guid.NewGuid()}"))
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            var res = await browser.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        }
        // Paths of the API, the feed, the hooks, the add-on and the tracking endpoints: no web app page even for a
        // browser's Accept header.
        foreach (var path in new[] { "/api/no-such-thing", "/api/feed/nothing", "/hooks/graph/nothing", "/gmail/nothing", "/o/", "/c/" })
        {
            var res = await BrowseAsync(user.Client, path);
            Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
            Assert.DoesNotContain("back-to-messages", await res.Content.ReadAsStringAsync());
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        }
        // The click endpoint writes its own plain 404 page for an unknown token, as before.
        var click = await BrowseAsync(app.Anonymous(), "/c/AAAAAAAAAAAAAAAAAAAAAAAA");
        Assert.Equal(HttpStatusCode.NotFound, click.StatusCode);
        Assert.DoesNotContain("back-to-messages", await click.Content.ReadAsStringAsync());
    }
}
