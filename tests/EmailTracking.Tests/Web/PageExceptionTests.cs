using System.Data.Common;
using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Web;

/// <summary>
/// An unhandled exception: a browser's page that throws gets the web app's error page with status 500 (a sentence and
/// a request id, nothing of the exception); the API, the tracking endpoints and a program asking for a page keep what
/// they answered before (problem details; the pixel's GIF; the click's own page).
/// </summary>
public sealed class PageExceptionTests(FailingApp app) : IClassFixture<FailingApp>
{
    const string BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
    const string Password = "Correct-horse-battery-9";

    static async Task<HttpResponseMessage> SendAsync(HttpClient client, string path, string? accept, string failure)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (accept is not null) request.Headers.TryAddWithoutValidation("Accept", accept);
        request.Headers.Add(failure, "1");
        return await client.SendAsync(request);
    }

    static async Task AssertServerErrorPageAsync(HttpResponseMessage res)
    {
        var html = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.InternalServerError, $"{(int)res.StatusCode}: {html}");
        Assert.Equal("text/html", res.Content.Headers.ContentType?.MediaType);
        // The app's page, signed in: its layout and navigation, a plain sentence, the way back.
        Assert.Contains("<header class=\"top\">", html);
        Assert.Contains("<a href=\"/documents\">Documents</a>", html);
        Assert.Contains("<h1>Something went wrong</h1>", html);
        Assert.Contains("The server could not finish this. Try again in a moment.", html);
        Assert.Contains("<a href=\"/\" id=\"back-to-messages\">", html);
        Assert.Matches("request <code id=\"request-id\">[^<]+</code>", html);
        // Nothing of the failure itself.
        Assert.DoesNotContain(FailingApp.Secret, html);
        Assert.DoesNotContain("Exception", html);
        Assert.DoesNotContain("EmailTracking.Tests", html);
        Assert.DoesNotContain("\"title\":", html);
    }

    static async Task AssertProblemAsync(HttpResponseMessage res)
    {
        var body = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.InternalServerError, $"{(int)res.StatusCode}: {body}");
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(500, problem.GetProperty("status").GetInt32());
        Assert.Equal("An error occurred while processing your request.", problem.GetProperty("title").GetString());
        Assert.Equal("https://tools.ietf.org/html/rfc9110#section-15.6.1", problem.GetProperty("type").GetString());
        Assert.DoesNotContain(FailingApp.Secret, body);
        Assert.DoesNotContain("back-to-messages", body);
    }

    [Fact]
    public async Task A_page_that_fails_on_the_database_is_the_error_page_with_500_in_a_browser()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        foreach (var path in new[] { "/", "/tokens", $"/messages/{Guid.NewGuid()}" })
        {
            await AssertServerErrorPageAsync(await SendAsync(browser, path, BrowserAccept, FailingApp.DatabaseDown));
        }
        // Once the database is back, the same pages answer as usual.
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/"))
        {
            request.Headers.TryAddWithoutValidation("Accept", BrowserAccept);
            Assert.Equal(HttpStatusCode.OK, (await browser.SendAsync(request)).StatusCode);
        }
    }

    [Fact]
    public async Task A_page_that_throws_in_its_own_code_is_the_error_page_with_500_in_a_browser()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        foreach (var path in new[] { "/", "/documents", "/sequences" })
        {
            await AssertServerErrorPageAsync(await SendAsync(browser, path, BrowserAccept, FailingApp.PageThrows));
        }
    }

    [Fact]
    public async Task A_program_asking_for_a_page_that_throws_still_gets_problem_details()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        foreach (var accept in new[] { "application/json", null })
        {
            await AssertProblemAsync(await SendAsync(browser, "/", accept, FailingApp.PageThrows));
            await AssertProblemAsync(await SendAsync(browser, "/", accept, FailingApp.DatabaseDown));
        }
    }

    [Fact]
    public async Task The_api_keeps_its_problem_details_and_the_tracking_endpoints_their_answers()
    {
        var user = await app.NewUserAsync();
        // Whatever the client says it accepts, a browser's Accept header included.
        foreach (var accept in new[] { null, "application/json", BrowserAccept })
        {
            await AssertProblemAsync(await SendAsync(user.Client, "/api/messages", accept, FailingApp.DatabaseDown));
        }
        var recipient = app.Anonymous();
        // The pixel: always the GIF, the database down or not.
        var pixel = await SendAsync(recipient, "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif", BrowserAccept, FailingApp.DatabaseDown);
        Assert.Equal(HttpStatusCode.OK, pixel.StatusCode);
        Assert.Equal("image/gif", pixel.Content.Headers.ContentType?.MediaType);
        Assert.Equal("GIF89a", System.Text.Encoding.ASCII.GetString((await pixel.Content.ReadAsByteArrayAsync())[..6]));
        // The click: its own plain page saying to try again, not the web app's.
        var click = await SendAsync(recipient, "/c/AAAAAAAAAAAAAAAAAAAAAAAA", BrowserAccept, FailingApp.DatabaseDown);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, click.StatusCode);
        var clickPage = await click.Content.ReadAsStringAsync();
        Assert.Contains("This link cannot be opened right now", clickPage);
        Assert.DoesNotContain("back-to-messages", clickPage);
    }
}

/// <summary>
/// The server with two ways, for tests only, to make a request fail: a header that makes every database connection it
/// opens fail, and one that makes every page throw before its handler runs. Neither exists outside this project.
/// </summary>
public sealed class FailingApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public const string DatabaseDown = "X-Test-Database-Down";
    public const string PageThrows = "X-Test-Page-Throws";

    /// <summary>The failures' message, which must never reach a response.</summary>
    public const string Secret = "test failure 7f3c: not for anyone's eyes";

    protected override void Configure(IWebHostBuilder builder) => builder.ConfigureServices(services =>
    {
        services.AddHttpContextAccessor();
        services.AddSingleton<FailWhenAsked>();
        services.ConfigureDbContext<AppDbContext>((sp, o) => o.AddInterceptors(sp.GetRequiredService<FailWhenAsked>()));
        services.Configure<MvcOptions>(o => o.Filters.Add(new ThrowWhenAsked()));
    });

    sealed class FailWhenAsked(IHttpContextAccessor http) : DbConnectionInterceptor
    {
        void Check()
        {
            if (http.HttpContext?.Request.Headers.ContainsKey(DatabaseDown) == true) throw new InvalidOperationException(Secret);
        }

        public override InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result)
        {
            Check();
            return result;
        }

        public override ValueTask<InterceptionResult> ConnectionOpeningAsync(DbConnection connection, ConnectionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
        {
            Check();
            return ValueTask.FromResult(result);
        }
    }

    sealed class ThrowWhenAsked : IAsyncPageFilter
    {
        public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

        /// <summary>Not the error page itself, re-executed for the same request: it has to be shown.</summary>
        public Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next) =>
            context.HttpContext.Request.Headers.ContainsKey(PageThrows) && context.HttpContext.Features.Get<IStatusCodeReExecuteFeature>() is null
                ? throw new InvalidOperationException(Secret)
                : next();
    }
}
