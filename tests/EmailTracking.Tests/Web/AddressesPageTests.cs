using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The Addresses page as the server renders it: an address refused by the add form comes back in its field (it came
/// back empty), and the Microsoft accounts' names, which their directory writes, are isolated from the page's words as
/// the Team page and the Outlook link page isolate them; so is a Salesforce org's refusal on the Salesforce page.
/// </summary>
public sealed class AddressesPageTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";

    static string Antiforgery(string html) =>
        WebUtility.HtmlDecode(Regex.Match(html, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value);

    static string AddField(string html) => Regex.Match(html, "<form[^>]*id=\"add-address\".*?(<input name=\"Address\"[^>]*>)", RegexOptions.Singleline).Groups[1].Value;

    [Fact]
    public async Task An_address_the_add_form_refuses_comes_back_in_its_field_with_the_reason()
    {
        var user = await app.NewUserAsync(password: Password);
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var alias = $"sales-{Guid.NewGuid():N}"[..14] + "@encom.test";
        async Task<HttpResponseMessage> AddAsync(string address) => await browser.PostAsync("/addresses", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Address"] = address, ["__RequestVerificationToken"] = Antiforgery(await browser.GetStringAsync("/addresses")),
        }));
        Assert.Equal(HttpStatusCode.Redirect, (await AddAsync(alias)).StatusCode);
        Assert.DoesNotContain("value=", AddField(await browser.GetStringAsync("/addresses")));

        // Added again: refused, said plainly, and the address typed is still in the field to correct.
        var res = await AddAsync(alias.ToUpperInvariant());
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = await res.Content.ReadAsStringAsync();
        Assert.Contains("already one of your addresses", WebUtility.HtmlDecode(html));
        Assert.Contains($"value=\"{alias.ToUpperInvariant()}\"", AddField(html));
        Assert.Equal(2, app.WithDb(db => db.UserAddresses.Count(a => a.UserId == user.Id)));
    }

    [Fact]
    public async Task A_microsoft_accounts_name_and_a_salesforce_refusal_cannot_turn_round_the_pages_words()
    {
        var user = await app.NewUserAsync(password: Password, role: TeamRole.Admin);
        // A directory can name an account anything: an override here would read the line after it backwards.
        const string name = "\u202EKevin Flynn";
        const string signInName = "\u202Emoc.knab-terces@flynn.test";
        await app.WithDbAsync(async db =>
        {
            db.MicrosoftAccountLinks.Add(new MicrosoftAccountLink
            {
                UserId = user.Id, TenantId = "tenant-1", ObjectId = Guid.NewGuid().ToString(), DisplayName = name, SignInName = signInName,
                LinkedAt = DateTimeOffset.UtcNow,
            });
            db.SalesforceConnections.Add(new SalesforceConnection
            {
                TeamId = user.TeamId, ConnectedByUserId = user.Id, InstanceUrl = "https://encom.my.salesforce.test", ProtectedSecret = "unused",
                Status = SalesforceStatus.NeedsReconnect, StatusMessage = "invalid_grant: \u202Edetavitcaed resu", CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);

        var account = WebUtility.HtmlDecode(Regex.Match(await browser.GetStringAsync("/addresses"), "<li data-microsoft-account=\"link:.*?</li>", RegexOptions.Singleline).Value);
        // The name isolated as written; the sign-in name, an address, with its invisible override shown.
        Assert.Contains($"<strong><bdi>{name}</bdi></strong>", account);
        Assert.Contains("<span><bdi class=\"exact\">\uFFFDmoc.knab-terces@flynn.test</bdi></span>", account);
        Assert.DoesNotContain(signInName, account);

        var salesforce = WebUtility.HtmlDecode(await browser.GetStringAsync("/salesforce"));
        Assert.Contains("<div class=\"small muted status-message\"><bdi class=\"exact\">invalid_grant: \uFFFDdetavitcaed resu</bdi></div>", salesforce);
    }
}
