using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>The sign-in form against what a browser's own checks would have stopped, and a signed-in session afterwards.</summary>
public sealed class SignInTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";

    internal static async Task<HttpResponseMessage> PostLoginAsync(HttpClient client, Dictionary<string, string> fields)
    {
        var form = await client.GetStringAsync("/login");
        fields["__RequestVerificationToken"] = Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        return await client.PostAsync("/login", new FormUrlEncodedContent(fields));
    }

    [Fact]
    public async Task An_empty_email_or_password_is_the_wrong_email_or_password_answer_not_a_500()
    {
        var user = await app.NewUserAsync(password: Password);
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        foreach (var fields in new Dictionary<string, string>[]
                 {
                     new() { ["Email"] = "", ["Password"] = Password },
                     new() { ["Email"] = user.Email, ["Password"] = "" },
                     new() { ["Email"] = "", ["Password"] = "" },
                     new() { ["Password"] = Password },
                     new() { ["Email"] = user.Email },
                 })
        {
            var res = await PostLoginAsync(client, fields);
            var html = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.OK, $"{string.Join(", ", fields.Keys)}: {(int)res.StatusCode}");
            Assert.Contains("Wrong email or password.", html);
        }
        // Still signs in with the right ones.
        var ok = await PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
    }

    [Fact]
    public async Task An_account_an_administrator_closed_is_told_so_not_to_wait_15_minutes()
    {
        var user = await app.NewUserAsync(password: Password);
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.LockoutEnd, DateTimeOffset.MaxValue)));
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        var right = await (await PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password })).Content.ReadAsStringAsync();
        Assert.Contains("closed by an administrator", right);
        Assert.DoesNotContain("15 minutes", right);
        // Without the password, nothing about the account: the answer to any wrong password.
        var wrong = await (await PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = "Not-the-password-1" })).Content.ReadAsStringAsync();
        Assert.Contains("Wrong email or password.", wrong);
        Assert.DoesNotContain("administrator", wrong);
    }

    /// <summary>
    /// An administrator's lock (a far lockout end) ends the web session as it ends API tokens; so does a changed role or
    /// team, which the cookie names: the user signs in again and gets the new ones.
    /// </summary>
    [Fact]
    public async Task A_web_session_ends_when_the_account_is_shut_deleted_or_its_role_changes()
    {
        async Task<(TestUser User, HttpClient Browser)> SignedInAsync(TeamRole role = TeamRole.Member)
        {
            var user = await app.NewUserAsync(role: role, password: Password);
            var browser = await WebSession.SignInAsync(app, user.Email, Password);
            Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/api/me")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/tokens")).StatusCode);
            return (user, browser);
        }

        var (shut, shutBrowser) = await SignedInAsync();
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == shut.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.LockoutEnd, DateTimeOffset.MaxValue)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await shutBrowser.GetAsync("/api/me")).StatusCode);
        var page = await shutBrowser.GetAsync("/tokens");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Contains("/login", page.Headers.Location!.OriginalString, StringComparison.Ordinal);

        // Wrong passwords' lock stops password sign-in only: a session already open goes on.
        var (typo, typoBrowser) = await SignedInAsync();
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == typo.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.LockoutEnd, DateTimeOffset.UtcNow + EmailTracking.Server.Accounts.Auth.FailedSignInLockout)));
        Assert.Equal(HttpStatusCode.OK, (await typoBrowser.GetAsync("/api/me")).StatusCode);

        var (gone, goneBrowser) = await SignedInAsync();
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == gone.Id).ExecuteDeleteAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, (await goneBrowser.GetAsync("/api/me")).StatusCode);

        // An admin made a member no longer follows the team's feed on the strength of the cookie.
        var (demoted, demotedBrowser) = await SignedInAsync(TeamRole.Admin);
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == demoted.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.Role, TeamRole.Member)));
        Assert.Equal(HttpStatusCode.Unauthorized, (await demotedBrowser.GetAsync("/api/me")).StatusCode);
        var again = await WebSession.SignInAsync(app, demoted.Email, Password);
        Assert.Contains("\"role\":\"member\"", await again.GetStringAsync("/api/me"));
    }

    static string TokenOf(string page) => Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;

    /// <summary>
    /// The sign-in page left open while the user signed in in another tab: its form's antiforgery token was made for
    /// nobody, and sent by a browser that is now signed in it got the 400 page. It goes on to where it was headed (its
    /// local ReturnUrl, else the home page), without signing in as whoever the form names. A browser that is not signed in
    /// is still refused a form without a good token, and every other page's forms keep theirs.
    /// </summary>
    [Fact]
    public async Task A_sign_in_form_left_open_while_the_browser_signed_in_elsewhere_goes_on_instead_of_the_400_page()
    {
        var user = await app.NewUserAsync(password: Password);
        var other = await app.NewUserAsync(password: Password);
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        // Tab one: sent to sign in on the way to the tokens page, and left there.
        var first = TokenOf(await browser.GetStringAsync("/login?ReturnUrl=%2Ftokens"));
        // Tab two: signs in.
        Assert.Equal(HttpStatusCode.Redirect, (await PostLoginAsync(browser, new() { ["Email"] = user.Email, ["Password"] = Password })).StatusCode);

        // Tab one's form, sent now, as the browser posts it (to the page's own address, ReturnUrl in a field too).
        var res = await browser.PostAsync("/login?ReturnUrl=%2Ftokens", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["ReturnUrl"] = "/tokens", ["Email"] = user.Email, ["Password"] = Password, ["__RequestVerificationToken"] = first,
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.Equal("/tokens", res.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/tokens")).StatusCode);

        // Headed nowhere, or off the site: the home page. Another account named in the form is not signed in to.
        foreach (var (returnUrl, email) in new[] { ("", user.Email), ("https://evil.test/", other.Email), ("//evil.test/", other.Email), ("/\\evil.test/", user.Email) })
        {
            var again = await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["ReturnUrl"] = returnUrl, ["Email"] = email, ["Password"] = Password, ["__RequestVerificationToken"] = first,
            }));
            Assert.True(again.StatusCode == HttpStatusCode.Redirect && again.Headers.Location?.OriginalString == "/", $"{returnUrl}: {(int)again.StatusCode} {again.Headers.Location}");
        }
        var me = await (await browser.GetAsync("/api/me")).Content.ReadAsStringAsync();
        Assert.Contains(user.Email, me);
        Assert.DoesNotContain(other.Email, me);

        // A form whose token fits the signed-in browser still signs in (switching accounts on purpose).
        var fits = TokenOf(await browser.GetStringAsync("/login"));
        var switched = await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = other.Email, ["Password"] = Password, ["__RequestVerificationToken"] = fits,
        }));
        Assert.Equal(HttpStatusCode.Redirect, switched.StatusCode);
        Assert.Contains(other.Email, await (await browser.GetAsync("/api/me")).Content.ReadAsStringAsync());

        // Without a good token: refused as before when not signed in, and on every other page's form when signed in.
        var stranger = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        await stranger.GetStringAsync("/login");
        var forged = await stranger.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = user.Email, ["Password"] = Password, ["__RequestVerificationToken"] = "not-a-token",
        }));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/api/me")).StatusCode);
        var stale = await browser.PostAsync("/tokens?handler=Create", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Name"] = "made by a stale form", ["__RequestVerificationToken"] = first,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, stale.StatusCode);
    }
}
