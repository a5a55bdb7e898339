using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Api;

/// <summary>
/// The web app's cookie signs in to the API too; a call that changes something with it must say it is ours (a header
/// another site's form cannot set and its scripts cannot send), or it is refused and changes nothing.
/// </summary>
public sealed class CookieApiGuardTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";

    [Fact]
    public async Task A_change_signed_in_by_the_cookie_needs_the_header_and_an_api_token_does_not()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSession.SignInAsync(app, user.Email, Password);
        var alias = $"alias-{Guid.NewGuid():N}"[..14] + "@sender.test";
        string[] Addresses() => app.WithDb(db => db.UserAddresses.Where(a => a.UserId == user.Id).Select(a => a.Address).ToArray());

        // As another site's page would make the browser send it: JSON from a script, or a plain form.
        var refused = await browser.PostAsJsonAsync("/api/me/addresses", new { address = alias });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Cross-site request refused.", problem.GetProperty("title").GetString());
        Assert.Contains(CookieApiGuard.Header, problem.GetProperty("detail").GetString());
        Assert.DoesNotContain(alias, Addresses());
        // A form (the classic cross-site post) to the one API endpoint that takes forms: a document upload.
        var upload = new MultipartFormDataContent { { new ByteArrayContent("%PDF-1.4\n%%EOF\n"u8.ToArray()), "file", "deck.pdf" } };
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.PostAsync("/api/content", upload)).StatusCode);
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.UserId == user.Id)));

        // Reading with the cookie needs nothing (the web app's live feed does it).
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/api/me")).StatusCode);

        // With the header, the same call goes through.
        using var ours = new HttpRequestMessage(HttpMethod.Post, "/api/me/addresses") { Content = JsonContent.Create(new { address = alias }) };
        ours.Headers.Add(CookieApiGuard.Header, "1");
        Assert.True((await browser.SendAsync(ours)).IsSuccessStatusCode);
        Assert.Contains(alias, Addresses());

        // An API token is not sent by browsers on their own: no header needed.
        var other = $"other-{Guid.NewGuid():N}"[..14] + "@sender.test";
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = other })).IsSuccessStatusCode);
        Assert.Contains(other, Addresses());
    }

    [Fact]
    public async Task Wrong_passwords_lock_password_sign_in_but_not_the_users_api_tokens()
    {
        var user = await app.NewUserAsync(password: Password);
        var anonymous = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        for (var i = 0; i < 6; i++)
        {
            var login = await anonymous.GetStringAsync("/login");
            var antiforgery = System.Text.RegularExpressions.Regex.Match(login, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
            await anonymous.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Email"] = user.Email, ["Password"] = $"Wrong-password-{i}", ["__RequestVerificationToken"] = antiforgery,
            }));
        }
        // Locked for password sign-in…
        Assert.NotNull(app.WithDb(db => db.Users.Where(u => u.Id == user.Id).Select(u => u.LockoutEnd).First()));
        await Assert.ThrowsAnyAsync<Exception>(() => WebSession.SignInAsync(app, user.Email, Password));
        // …but a stranger typing wrong passwords does not switch the user's token off.
        Assert.Equal(HttpStatusCode.OK, (await user.Client.GetAsync("/api/me")).StatusCode);

        // An administrator's lock (Identity's far lockout end) shuts the token too.
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.LockoutEnd, DateTimeOffset.UtcNow.AddYears(100))));
        Assert.Equal(HttpStatusCode.Unauthorized, (await user.Client.GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task Swagger_ui_sends_the_header_when_it_tries_the_api_out()
    {
        var ui = await app.CreateClient().GetStringAsync("/swagger/index.js");
        Assert.Contains(CookieApiGuard.Header, ui);
    }
}
