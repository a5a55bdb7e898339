using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Server.Outlook;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Outlook;

/// <summary>
/// The Outlook add-in's link flow: a Microsoft account that names no EmailTracking user is refused with a one-time
/// link (<c>linkUrl</c>) made for that account; opened signed in to the web app, the page names the account and, once
/// confirmed, the account (its tenant and object ids) signs in as the web user. Used, altered and expired links link
/// nothing; the user sees and removes their Microsoft accounts on Your addresses.
/// </summary>
public abstract class MicrosoftAccountLinkTests(OutlookApp app)
{
    const string Password = "Outlook-Link-Test7";

    static string NewAddress(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 9)] + "@personal.test";

    /// <summary>A token as the pane has it: its sign-in name, and the person's name.</summary>
    HttpClient Pane(string signInName, string name = "Kevin Flynn", string tenant = TestIssuer.TenantId) =>
        app.AsMicrosoftUser(signInName, new TestIssuer.TokenSpec { Tenant = tenant, Extra = { ["name"] = name } });

    /// <summary>The refusal the pane gets, with its reason and the link it offers (null when none).</summary>
    /// <summary>
    /// An admin and a member of a new team. The member's Microsoft account is bound by their email at a first add-in
    /// sign-in, and a second, of another organisation ("Flynn at Dillinger"), is linked by them on the link page; its
    /// pane is returned.
    /// </summary>
    async Task<(TestUser Admin, TestUser Member, HttpClient Other)> MemberWithTwoMicrosoftAccountsAsync()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var admin = await app.NewUserAsync(team: team, role: EmailTracking.Data.TeamRole.Admin, password: Password);
        var member = await app.NewUserAsync(team: team, password: Password);
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(member.Email).GetAsync("/api/me")).StatusCode);
        var other = Pane(member.Email, "Flynn at Dillinger", TestIssuer.OtherTenantId);
        var (_, linkUrl) = await RefusalAsync(other);
        using var memberBrowser = await WebSignIn.SignInAsync(app, member.Email, Password);
        var path = new Uri(linkUrl!).PathAndQuery;
        var page = await memberBrowser.GetStringAsync(path);
        Assert.Equal("Linked", State(await (await ConfirmAsync(memberBrowser, path, page)).Content.ReadAsStringAsync()));
        return (admin, member, other);
    }

    static async Task<(string Reason, string? LinkUrl)> RefusalAsync(HttpClient pane)
    {
        var res = await pane.GetAsync("/api/outlook/me");
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        return (problem.GetProperty("reason").GetString()!, problem.TryGetProperty("linkUrl", out var l) ? l.GetString() : null);
    }

    static string Token(string pathAndQuery) => System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + pathAndQuery).Query)["t"]!;

    static string Antiforgery(string page)
    {
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(token), "no antiforgery token on the page");
        return token;
    }

    static Task<HttpResponseMessage> ConfirmAsync(HttpClient browser, string path, string page) =>
        browser.PostAsync(OutlookAccountLink.PagePath, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["t"] = Token(path), ["__RequestVerificationToken"] = Antiforgery(page),
        }));

    static string State(string page) => Regex.Match(page, "id=\"outlook-link\" data-state=\"([A-Za-z]+)\"").Groups[1].Value;

    [Fact]
    public async Task An_account_that_names_no_user_is_linked_on_the_link_page_and_then_signs_in_as_that_user()
    {
        var user = await app.NewUserAsync(password: Password);
        var upn = NewAddress("kflynn");
        var pane = Pane(upn);

        var (reason, linkUrl) = await RefusalAsync(pane);
        Assert.Equal("not-linked", reason);
        Assert.NotNull(linkUrl);
        Assert.StartsWith("http://localhost" + OutlookAccountLink.PagePath + "?t=", linkUrl);
        var path = new Uri(linkUrl).PathAndQuery;

        // Signed in to the web app: the page names the Microsoft account (name, sign-in name, tenant) and the user.
        using var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var page = await browser.GetStringAsync(path);
        Assert.Equal("Ready", State(page));
        Assert.Contains("Kevin Flynn", page);
        Assert.Contains(upn, page);
        Assert.Contains(TestIssuer.TenantId, page);
        Assert.Contains(user.Email, page);
        // Looking at the page links nothing.
        Assert.Equal("not-linked", (await RefusalAsync(pane)).Reason);

        var confirmed = await ConfirmAsync(browser, path, page);
        Assert.Equal(HttpStatusCode.OK, confirmed.StatusCode);
        Assert.Equal("Linked", State(await confirmed.Content.ReadAsStringAsync()));

        // Stored by the stable ids, not the sign-in name.
        var row = Assert.Single(app.WithDb(db => db.MicrosoftAccountLinks.Where(l => l.UserId == user.Id).ToList()));
        Assert.Equal(TestIssuer.TenantId, row.TenantId);
        Assert.Equal(TestIssuer.StableObjectId(TestIssuer.TenantId, upn), row.ObjectId);
        Assert.Equal(("Kevin Flynn", upn), (row.DisplayName, row.SignInName));

        // The pane's very token now works (no new sign-in), and so does the account after a rename.
        var me = await pane.GetJsonAsync("/api/outlook/me");
        Assert.Equal(user.Email, me.GetProperty("email").GetString());
        var renamed = app.AsMicrosoftUser(NewAddress("renamed"), new TestIssuer.TokenSpec { Extra = { ["oid"] = row.ObjectId } });
        Assert.Equal(user.Id, (await renamed.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());

        // The link is used: opening or posting it again is refused and links nothing more.
        var again = await browser.GetAsync(path);
        Assert.Equal(HttpStatusCode.Gone, again.StatusCode);
        Assert.Equal("Used", State(await again.Content.ReadAsStringAsync()));
        var repost = await ConfirmAsync(browser, path, page);
        Assert.Equal(HttpStatusCode.Gone, repost.StatusCode);
        Assert.Equal(1, app.WithDb(db => db.MicrosoftAccountLinks.Count(l => l.UserId == user.Id)));

        // Your addresses lists it; removing it makes the pane ask for a link again.
        var addresses = await browser.GetStringAsync("/addresses");
        Assert.Contains("Kevin Flynn", addresses);
        Assert.Contains($"data-microsoft-account=\"link:{row.Id}\"", addresses);
        var removed = await browser.PostAsync("/addresses?handler=RemoveMicrosoft", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["MicrosoftAccountKey"] = $"link:{row.Id}", ["__RequestVerificationToken"] = Antiforgery(addresses),
        }));
        Assert.Equal(HttpStatusCode.Redirect, removed.StatusCode);
        Assert.Equal(0, app.WithDb(db => db.MicrosoftAccountLinks.Count(l => l.UserId == user.Id)));
        Assert.Equal("not-linked", (await RefusalAsync(pane)).Reason);
        Assert.DoesNotContain("Kevin Flynn", await browser.GetStringAsync("/addresses"));
    }

    [Fact]
    public async Task A_link_that_was_altered_forged_or_expired_links_nothing()
    {
        var user = await app.NewUserAsync(password: Password);
        var upn = NewAddress("sam");
        var (_, linkUrl) = await RefusalAsync(Pane(upn, "Sam Flynn"));
        var path = new Uri(linkUrl!).PathAndQuery;
        using var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var page = await browser.GetStringAsync(path);

        // Altered, missing, made up, or too long: a 400 page that says to ask the add-in for a new link.
        var altered = path[..^3] + (path[^3] == 'A' ? "B" : "A") + path[^2..];
        var gmailLink = new Uri(app.Services.GetRequiredService<EmailTracking.Server.Gmail.GmailAccountLink>().Url("http://localhost", upn)).Query;
        foreach (var bad in new[] { altered, OutlookAccountLink.PagePath, OutlookAccountLink.PagePath + gmailLink, OutlookAccountLink.PagePath + "?t=" + new string('x', 5000) })
        {
            var res = await browser.GetAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            var text = await res.Content.ReadAsStringAsync();
            Assert.Equal("Invalid", State(text));
            Assert.Contains("not valid or has expired", text);
            Assert.DoesNotContain("Sam Flynn", text);
        }
        var post = await ConfirmAsync(browser, altered, page);
        Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);

        // Expired: made by a clock 31 minutes behind ours.
        var stale = new OutlookAccountLink(app.Services.GetRequiredService<IDataProtectionProvider>(),
            new FakeTimeProvider(DateTimeOffset.UtcNow - OutlookAccountLink.Lifetime - TimeSpan.FromMinutes(1)));
        var expired = new Uri(stale.Url("http://localhost", TestIssuer.TenantId, TestIssuer.StableObjectId(TestIssuer.TenantId, upn), "Sam Flynn", upn)).PathAndQuery;
        Assert.Equal(HttpStatusCode.BadRequest, (await browser.GetAsync(expired)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await ConfirmAsync(browser, expired, page)).StatusCode);

        Assert.Equal(0, app.WithDb(db => db.MicrosoftAccountLinks.Count(l => l.UserId == user.Id)));
        Assert.Equal("not-linked", (await RefusalAsync(Pane(upn, "Sam Flynn"))).Reason);
    }

    /// <summary>
    /// The link names a Microsoft account, not a web user: whoever opens it signed in is who it would link to. The page
    /// names both, and nothing links without the confirmation (as with the Gmail add-on's link). Once linked, the
    /// account is that user's: another user's page says so and their confirmation links nothing.
    /// </summary>
    [Fact]
    public async Task A_link_opened_by_another_web_user_links_to_that_user_and_a_linked_account_is_not_taken()
    {
        var first = await app.NewUserAsync(password: Password);
        var second = await app.NewUserAsync(password: Password);
        var upn = NewAddress("alan");
        var pane = Pane(upn, "Alan Bradley");
        var path1 = new Uri((await RefusalAsync(pane)).LinkUrl!).PathAndQuery;
        var path2 = new Uri((await RefusalAsync(pane)).LinkUrl!).PathAndQuery;
        Assert.NotEqual(path1, path2);

        using var secondBrowser = await WebSignIn.SignInAsync(app, second.Email, Password);
        var page = await secondBrowser.GetStringAsync(path1);
        Assert.Equal("Ready", State(page));
        Assert.Contains(second.Email, page);
        Assert.Equal("Linked", State(await (await ConfirmAsync(secondBrowser, path1, page)).Content.ReadAsStringAsync()));
        Assert.Equal(second.Id, (await pane.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());

        // The other link of the same account, opened by the first user: someone else's.
        using var firstBrowser = await WebSignIn.SignInAsync(app, first.Email, Password);
        var taken = await firstBrowser.GetAsync(path2);
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        var takenPage = await taken.Content.ReadAsStringAsync();
        Assert.Equal("SomeoneElses", State(takenPage));
        Assert.Equal(HttpStatusCode.Conflict, (await ConfirmAsync(firstBrowser, path2, takenPage)).StatusCode);
        Assert.Equal(second.Id, app.WithDb(db => db.MicrosoftAccountLinks.Single(l => l.ObjectId == TestIssuer.StableObjectId(TestIssuer.TenantId, upn)).UserId));
        // And the first user cannot remove the second's link.
        var firstAddresses = await firstBrowser.GetStringAsync("/addresses");
        var id = app.WithDb(db => db.MicrosoftAccountLinks.Single(l => l.UserId == second.Id).Id);
        var remove = await firstBrowser.PostAsync("/addresses?handler=RemoveMicrosoft", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["MicrosoftAccountKey"] = $"link:{id}", ["__RequestVerificationToken"] = Antiforgery(firstAddresses),
        }));
        Assert.Equal(HttpStatusCode.NotFound, remove.StatusCode);
        Assert.Contains("not linked to your account", await remove.Content.ReadAsStringAsync());
        Assert.Equal(second.Id, (await pane.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
    }

    /// <summary>An account whose token names no usable address (only an unverified email) is linked by its ids all the same.</summary>
    [Fact]
    public async Task An_account_whose_token_names_no_address_can_be_linked()
    {
        var user = await app.NewUserAsync(password: Password);
        var email = NewAddress("ram");
        var pane = app.AsMicrosoftUser(email, new TestIssuer.TokenSpec { AddressClaim = "email", Extra = { ["name"] = "Ram" } });
        var (reason, linkUrl) = await RefusalAsync(pane);
        Assert.Equal("no-address", reason);
        using var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var path = new Uri(linkUrl!).PathAndQuery;
        var page = await browser.GetStringAsync(path);
        Assert.Equal("Ready", State(page));
        Assert.Contains("Ram", page);
        Assert.Equal("Linked", State(await (await ConfirmAsync(browser, path, page)).Content.ReadAsStringAsync()));
        Assert.Equal(user.Id, (await pane.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
    }

    /// <summary>
    /// A user whose email is bound to one Microsoft account (its first sign-in) can link a second one themselves — the
    /// account of another organisation with the same sign-in name, refused as linked-elsewhere — without an admin.
    /// </summary>
    [Fact]
    public async Task An_account_refused_as_linked_elsewhere_can_be_linked_by_the_user_too()
    {
        var user = await app.NewUserAsync(password: Password);
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(user.Email).GetAsync("/api/me")).StatusCode);
        var other = Pane(user.Email, "Flynn at Dillinger", TestIssuer.OtherTenantId);
        var (reason, linkUrl) = await RefusalAsync(other);
        Assert.Equal("linked-elsewhere", reason);

        using var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var path = new Uri(linkUrl!).PathAndQuery;
        var page = await browser.GetStringAsync(path);
        Assert.Contains(TestIssuer.OtherTenantId, page);
        Assert.Equal("Linked", State(await (await ConfirmAsync(browser, path, page)).Content.ReadAsStringAsync()));
        Assert.Equal(user.Id, (await other.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
        Assert.Equal(user.Id, (await app.AsMicrosoftUser(user.Email).GetJsonAsync("/api/me")).GetProperty("id").GetGuid());

        // Both are on Your addresses: the one bound by the email (by its ids) and the linked one.
        var addresses = await browser.GetStringAsync("/addresses");
        Assert.Contains($"data-microsoft-account=\"login:{TestIssuer.TenantId}/{TestIssuer.StableObjectId(TestIssuer.TenantId, user.Email)}\"", addresses);
        Assert.Contains("Flynn at Dillinger", addresses);

        // An administrator's `et users unlink-microsoft` forgets both.
        var settings = new Dictionary<string, string> { ["Database__Provider"] = app.Provider, ["ConnectionStrings__Default"] = app.ConnectionString };
        var (code, _, stderr) = await ServerProcess.RunCliAsync(Directory.CreateTempSubdirectory("et-cli-").FullName, settings,
            "users", "unlink-microsoft", "--email", user.Email);
        Assert.True(code == 0, stderr);
        Assert.Contains($"Unlinked the 2 Microsoft accounts of {user.Email}", stderr);
        Assert.Equal(0, app.WithDb(db => db.MicrosoftAccountLinks.Count(l => l.UserId == user.Id) + db.UserLogins.Count(l => l.UserId == user.Id && l.LoginProvider == "Microsoft")));
    }

    /// <summary>
    /// A team admin sees each member's Microsoft accounts on the Team page and unlinks them there, as `et users
    /// unlink-microsoft` does: the add-in's accounts no longer sign in as the member, and the next account to sign in
    /// with the member's address is bound instead. Members and other teams' admins cannot.
    /// </summary>
    [Fact]
    public async Task A_team_admin_sees_a_members_microsoft_accounts_on_the_team_page_and_unlinks_them()
    {
        var (admin, member, other) = await MemberWithTwoMicrosoftAccountsAsync();
        using (var memberBrowser = await WebSignIn.SignInAsync(app, member.Email, Password))
        {
            // A member who is not an admin cannot unlink anyone's (the page's 403), their own neither.
            var refused = await memberBrowser.PostAsync($"/team?handler=UnlinkMicrosoft&id={member.Id}", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = Antiforgery(await memberBrowser.GetStringAsync("/addresses")),
            }));
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        Assert.Equal(2, MicrosoftAccountsOf(member.Id));

        using var browser = await WebSignIn.SignInAsync(app, admin.Email, Password);
        var teamPage = await browser.GetStringAsync("/team");
        var row = Regex.Match(teamPage, $"<tr data-member=\"{Regex.Escape(member.Email)}\".*?</tr>", RegexOptions.Singleline).Value;
        Assert.Contains($"data-microsoft-account=\"login:{TestIssuer.TenantId}/{TestIssuer.StableObjectId(TestIssuer.TenantId, member.Email)}\"", row);
        Assert.Contains("Flynn at Dillinger", row);
        Assert.Contains(TestIssuer.OtherTenantId, row);
        Assert.Contains(">Unlink Microsoft accounts<", row);
        // The admin's own row has none, and no button.
        var own = Regex.Match(teamPage, $"<tr data-member=\"{Regex.Escape(admin.Email)}\".*?</tr>", RegexOptions.Singleline).Value;
        Assert.DoesNotContain("unlink-microsoft", own);

        // Another team's admin does not find the member.
        var strangerUser = await app.NewUserAsync(role: EmailTracking.Data.TeamRole.Admin, password: Password);
        using (var stranger = await WebSignIn.SignInAsync(app, strangerUser.Email, Password))
        {
            var res = await stranger.PostAsync($"/team?handler=UnlinkMicrosoft&id={member.Id}", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = Antiforgery(await stranger.GetStringAsync("/team")),
            }));
            Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
        }
        Assert.Equal(2, MicrosoftAccountsOf(member.Id));

        var unlink = await browser.PostAsync($"/team?handler=UnlinkMicrosoft&id={member.Id}", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Antiforgery(teamPage),
        }));
        Assert.Equal(HttpStatusCode.Redirect, unlink.StatusCode);
        Assert.Equal(0, MicrosoftAccountsOf(member.Id));
        var after = System.Net.WebUtility.HtmlDecode(await browser.GetStringAsync("/team"));
        Assert.Contains($"The 2 Microsoft accounts of {member.Email} are unlinked", after);
        Assert.DoesNotContain("Flynn at Dillinger", after);
        // The next account to sign in with the member's address is theirs now: the other organisation's.
        Assert.Equal(member.Id, (await other.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
        Assert.Equal("linked-elsewhere", (await RefusalAsync(app.AsMicrosoftUser(member.Email))).Reason);
    }

    /// <summary>
    /// The members API shows each member's Microsoft accounts as the Team page does (the bound one by its ids, the linked
    /// one with its name and when), and a team admin unlinks them with DELETE …/microsoft-accounts: members are refused,
    /// another team's admin does not find the member, and the add-in's Microsoft token, an admin's too, is refused.
    /// </summary>
    [Fact]
    public async Task A_team_admin_lists_and_unlinks_a_members_microsoft_accounts_through_the_api()
    {
        var (admin, member, other) = await MemberWithTwoMicrosoftAccountsAsync();

        var listText = await admin.Client.GetStringAsync("/api/team/members");
        var listed = JsonDocument.Parse(listText).RootElement.EnumerateArray().ToList();
        var accounts = listed.Single(m => m.GetProperty("id").GetGuid() == member.Id).GetProperty("microsoftAccounts").EnumerateArray().ToList();
        Assert.Equal(2, accounts.Count);
        Assert.Equal(TestIssuer.TenantId, accounts[0].GetProperty("tenantId").GetString());
        Assert.Equal(TestIssuer.StableObjectId(TestIssuer.TenantId, member.Email), accounts[0].GetProperty("objectId").GetString());
        Assert.Equal(JsonValueKind.Null, accounts[0].GetProperty("linkedAt").ValueKind);
        Assert.Equal(TestIssuer.OtherTenantId, accounts[1].GetProperty("tenantId").GetString());
        Assert.Equal(TestIssuer.StableObjectId(TestIssuer.OtherTenantId, member.Email), accounts[1].GetProperty("objectId").GetString());
        Assert.Equal(("Flynn at Dillinger", member.Email), (accounts[1].GetProperty("displayName").GetString(), accounts[1].GetProperty("signInName").GetString()));
        Assert.Equal(JsonValueKind.String, accounts[1].GetProperty("linkedAt").ValueKind);
        Assert.Empty(listed.Single(m => m.GetProperty("id").GetGuid() == admin.Id).GetProperty("microsoftAccounts").EnumerateArray());
        // The key the Addresses page removes by is the web app's, not the API's.
        Assert.DoesNotContain("\"key\"", listText);

        var unlinkPath = $"/api/team/members/{member.Id}/microsoft-accounts";
        Assert.Equal(HttpStatusCode.Forbidden, (await member.Client.DeleteAsync(unlinkPath)).StatusCode);
        var stranger = await app.NewUserAsync(role: EmailTracking.Data.TeamRole.Admin, password: Password);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.DeleteAsync(unlinkPath)).StatusCode);
        var pane = await app.AsMicrosoftUser(admin.Email).DeleteAsync(unlinkPath);
        Assert.Equal(HttpStatusCode.Forbidden, pane.StatusCode);
        Assert.Contains("addin-token", await pane.Content.ReadAsStringAsync());
        Assert.Equal(2, MicrosoftAccountsOf(member.Id));

        var unlinked = await admin.Client.DeleteAsync(unlinkPath);
        var view = JsonDocument.Parse(await unlinked.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.OK, unlinked.StatusCode);
        Assert.Equal(member.Id, view.GetProperty("id").GetGuid());
        Assert.Empty(view.GetProperty("microsoftAccounts").EnumerateArray());
        Assert.Equal(0, MicrosoftAccountsOf(member.Id));
        // The next account to sign in with the member's address is theirs now.
        Assert.Equal(member.Id, (await other.GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
    }

    int MicrosoftAccountsOf(Guid userId) =>
        app.WithDb(db => db.MicrosoftAccountLinks.Count(l => l.UserId == userId) + db.UserLogins.Count(l => l.UserId == userId && l.LoginProvider == "Microsoft"));
}

public sealed class MicrosoftAccountLinkOnSqlite(OutlookSqliteApp app) : MicrosoftAccountLinkTests(app), IClassFixture<OutlookSqliteApp>;

public sealed class MicrosoftAccountLinkOnPostgres(OutlookPostgresApp app) : MicrosoftAccountLinkTests(app), IClassFixture<OutlookPostgresApp>;

/// <summary>AzureAd:AllowedTenants applies to links too: a refused tenant is offered none, and a link made for one is refused.</summary>
public sealed class MicrosoftAccountLinkAllowedTenantsTests(OutlookAllowedTenantsApp app) : IClassFixture<OutlookAllowedTenantsApp>
{
    [Fact]
    public async Task A_tenant_not_allowed_gets_no_link_and_a_link_made_for_it_is_refused()
    {
        const string password = "Outlook-Link-Test8";
        var user = await app.NewUserAsync(password: password);
        var upn = $"crom-{Guid.NewGuid():N}"[..13] + "@other.test";
        var res = await app.AsMicrosoftUser(upn, new TestIssuer.TokenSpec { Tenant = TestIssuer.OtherTenantId }).GetAsync("/api/outlook/me");
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("tenant-not-allowed", problem.GetProperty("reason").GetString());
        Assert.False(problem.TryGetProperty("linkUrl", out _));

        // A link for that tenant (made while it was allowed, say): refused, and confirming it links nothing.
        var url = app.Services.GetRequiredService<OutlookAccountLink>().Url("http://localhost", TestIssuer.OtherTenantId,
            TestIssuer.StableObjectId(TestIssuer.OtherTenantId, upn), "Crom", upn);
        var path = new Uri(url).PathAndQuery;
        using var browser = await WebSignIn.SignInAsync(app, user.Email, password);
        var page = await browser.GetAsync(path);
        Assert.Equal(HttpStatusCode.Forbidden, page.StatusCode);
        var text = await page.Content.ReadAsStringAsync();
        Assert.Contains("data-state=\"TenantNotAllowed\"", text);
        Assert.Contains("AllowedTenants", text);
        // The refusal has no form: the antiforgery token of another page of the session.
        var token = Regex.Match(await browser.GetStringAsync("/addresses"), "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var post = await browser.PostAsync(OutlookAccountLink.PagePath, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["t"] = System.Web.HttpUtility.ParseQueryString(new Uri(url).Query)["t"]!, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Equal(0, app.WithDb(db => db.MicrosoftAccountLinks.Count()));
    }
}
