using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>The first-run page posted as a browser would not post it: each test class starts on a database without users.</summary>
static class SetupForm
{
    public static HttpClient Browser(AppFactory app) => app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    /// <summary>The form's antiforgery token (the page answers it only while there is no user).</summary>
    public static async Task<string> OpenAsync(HttpClient browser)
    {
        var form = await browser.GetStringAsync("/setup");
        return Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
    }

    public static Task<HttpResponseMessage> PostAsync(HttpClient browser, string antiforgery, string email, string team, string password) =>
        browser.PostAsync("/setup", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Team"] = team, ["Input.Plan"] = "Team", ["Input.Email"] = email, ["Input.Password"] = password,
            ["__RequestVerificationToken"] = antiforgery,
        }));
}

public sealed class FirstRunSetupTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task An_empty_password_is_refused_by_the_password_rules_and_makes_no_user()
    {
        var browser = SetupForm.Browser(app);
        var res = await SetupForm.PostAsync(browser, await SetupForm.OpenAsync(browser), "first@setup.test", "Encom", "");
        var html = await res.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Contains("at least 10 characters", html);
        Assert.Equal(0, app.WithDb(db => db.Users.Count()));
        // The page is still offered, for another try.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/setup")).StatusCode);
    }
}

/// <summary>Several first-run forms, all opened while there was no user, posted at the same moment: one admin, not several.</summary>
public abstract class FirstRunRaceTests(AppFactory app)
{
    [Fact]
    public async Task Concurrent_first_run_setups_create_one_user()
    {
        var forms = new List<(HttpClient Browser, string Antiforgery)>();
        for (var i = 0; i < 6; i++)
        {
            var browser = SetupForm.Browser(app);
            forms.Add((browser, await SetupForm.OpenAsync(browser)));
        }
        var answers = await Task.WhenAll(forms.Select((f, i) =>
            SetupForm.PostAsync(f.Browser, f.Antiforgery, $"first{i}@setup.test", $"Team {i}", "Correct-horse-battery-9")));

        Assert.Equal(1, app.WithDb(db => db.Users.Count()));
        Assert.Equal(1, app.WithDb(db => db.Users.Count(u => u.Role == TeamRole.Admin)));
        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Redirect);
        // The others find the page gone, as anyone opening it now does.
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.Redirect), a => Assert.Equal(HttpStatusCode.NotFound, a.StatusCode));
    }
}

public sealed class FirstRunRaceOnSqlite(SqliteApp app) : FirstRunRaceTests(app), IClassFixture<SqliteApp>;

public sealed class FirstRunRaceOnPostgres(PostgresApp app) : FirstRunRaceTests(app), IClassFixture<PostgresApp>;
