using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Server.Sequences;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The template form (/templates/new) posted as the browser posts it: what the API refuses is refused here too, with
/// the same words under the field it is about.
/// </summary>
public abstract class TemplatePageTests(AppFactory app)
{
    const string Password = "Correct-horse-battery-9";

    async Task<HttpClient> SignedInAsync()
    {
        var user = await app.NewUserAsync(password: Password);
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var res = await SignInTests.PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return client;
    }

    /// <summary>The form posted to one of its handlers with the page's antiforgery token; the page that comes back.</summary>
    static async Task<string> PostAsync(HttpClient web, string handler, Dictionary<string, string> fields)
    {
        var page = await web.GetStringAsync("/templates/new");
        fields["__RequestVerificationToken"] = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await web.PostAsync($"/templates/new?handler={handler}", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        return await res.Content.ReadAsStringAsync();
    }

    static string Errors(string html, string field) =>
        WebUtility.HtmlDecode(Regex.Match(html, $"<ul class=\"field-errors\" data-field=\"{field}\"[^>]*>(.*?)</ul>", RegexOptions.Singleline).Groups[1].Value);

    [Fact]
    public async Task A_template_over_the_step_limit_is_refused_under_its_body_saying_it_does_too_much_work()
    {
        var web = await SignedInAsync();
        var form = new Dictionary<string, string>
        {
            ["Name"] = "Loops", ["Subject"] = "Hi", ["Html"] = "{% for i in (1..300) %}{% for j in (1..300) %}x{% endfor %}{% endfor %}",
        };
        foreach (var handler in new[] { "Save", "Preview" })
        {
            var errors = Errors(await PostAsync(web, handler, new(form)), "html");
            Assert.Contains(MergeTemplates.TooMuchWork, errors);
            Assert.DoesNotContain("include", errors);
        }
    }

    [Fact]
    public async Task A_field_name_no_one_can_have_is_refused_under_the_body_and_the_preview_names_the_field_meant()
    {
        var web = await SignedInAsync();
        var saved = await PostAsync(web, "Save", new() { ["Name"] = "Camel", ["Subject"] = "Hi", ["Html"] = "<p>Hi {{ firstName }}</p>" });
        Assert.Contains("did you mean 'first_name'?", Errors(saved, "html"));
        var preview = WebUtility.HtmlDecode(await PostAsync(web, "Preview", new()
        {
            ["Subject"] = "Hi", ["Html"] = "<p>Hi {{ frist_name }} at {{ industry }}</p>", ["SampleEmail"] = "sam@encom.test", ["SampleFirstName"] = "Sam",
        }));
        Assert.Contains("'frist_name' is not a field this recipient has: did you mean 'first_name'?", preview);
        Assert.Contains("'industry' is not a field this recipient has; theirs are email, first_name.", preview);
    }
}

public sealed class TemplatePageOnSqlite(SqliteApp app) : TemplatePageTests(app), IClassFixture<SqliteApp>;

public sealed class TemplatePageOnPostgres(PostgresApp app) : TemplatePageTests(app), IClassFixture<PostgresApp>;
