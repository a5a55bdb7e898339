using System.Net;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>The server on a real Kestrel port for Chromium, on its own SQLite database.</summary>
public sealed class TeamPageBrowserApp() : AppFactory(DatabaseProvider.Sqlite);

/// <summary>
/// The Team page in Chromium: an admin opens it from the nav, a taken address is refused beside the form that keeps it,
/// a new member is added and their initial password shown; the member signs in with it in another browser, sees no Team
/// link and is told the page is the admins'; the admin deactivates them after confirming, and their open page is sent
/// to sign in. Each step's screenshot is saved.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class TeamPageBrowserTests : InProcessBrowserTest<TeamPageBrowserApp>
{
    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    async Task<(IPage Page, List<string> Errors)> SignedInAsync(string email, string password, string landing = "/")
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + landing);
        return (page, errors);
    }

    [Fact]
    public async Task An_admin_adds_a_member_who_signs_in_with_the_password_shown_and_is_deactivated_later()
    {
        var team = $"Encom-{Guid.NewGuid():N}"[..14];
        var admin = await app.NewUserAsync(team: team, plan: Plan.Team, role: TeamRole.Admin, password: Password);
        var taken = await app.NewUserAsync(); // someone in another team
        var (page, errors) = await SignedInAsync(admin.Email, Password);

        await page.ClickAsync("header nav a[href='/team']");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/team");
        await Assertions.Expect(page.Locator($"#members tr[data-member='{admin.Email}'] .access")).ToHaveTextAsync("can sign in");

        // An address already in use is refused; what was typed stays in the form.
        await page.FillAsync("#add-member input[name=Email]", taken.Email);
        await page.FillAsync("#add-member input[name=DisplayName]", "Alan Bradley");
        await page.ClickAsync("#add-member button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync($"{taken.Email} already belongs to a user.");
        await Assertions.Expect(page.Locator("#add-member input[name=DisplayName]")).ToHaveValueAsync("Alan Bradley");
        await Shot(page, "team-01-address-taken");

        await page.FillAsync("#add-member input[name=Email]", "alan@encom.test");
        await page.ClickAsync("#add-member button[type=submit]");
        await Assertions.Expect(page.Locator("#added")).ToContainTextAsync("alan@encom.test was added.");
        var password = (await page.TextContentAsync("#new-password"))!.Trim();
        var row = page.Locator("#members tr[data-member='alan@encom.test']");
        await Assertions.Expect(row.Locator(".display-name")).ToHaveTextAsync("Alan Bradley");
        await Assertions.Expect(row.Locator("select[name=Role]")).ToHaveValueAsync("Member");
        await Assertions.Expect(row.Locator(".last-sign-in")).ToHaveTextAsync("Never");
        await Shot(page, "team-02-member-added");

        // The new member signs in with the password they were handed and must choose their own first.
        var (memberPage, memberErrors) = await SignedInAsync("alan@encom.test", password, landing: "/password");
        await Assertions.Expect(memberPage.Locator("#change-required")).ToContainTextAsync("set by an administrator");
        await Shot(memberPage, "team-03-change-required");
        await memberPage.FillAsync("input[name=Current]", password);
        await memberPage.FillAsync("input[name=New]", "Alan-chose-this-1");
        await memberPage.FillAsync("input[name=Confirm]", "Alan-chose-this-1");
        await memberPage.ClickAsync("section form button.primary");
        await Assertions.Expect(memberPage.Locator("#changed")).ToBeVisibleAsync();
        // Then a member, without the Team page.
        await memberPage.GotoAsync(baseUrl + "/");
        await Assertions.Expect(memberPage.Locator("header .who .email")).ToHaveTextAsync("alan@encom.test");
        await Assertions.Expect(memberPage.Locator("header nav a[href='/team']")).ToHaveCountAsync(0);
        await memberPage.GotoAsync(baseUrl + "/team");
        await Assertions.Expect(memberPage.Locator("#admins-only")).ToContainTextAsync("Only a team admin");
        await Shot(memberPage, "team-04-member-refused");
        // The browser reports the refusal's status as an error of its own: that one was the point.
        memberErrors.RemoveAll(e => e.Contains("status of 403", StringComparison.Ordinal) && e.Contains("/team", StringComparison.Ordinal));

        // Deactivated after the admin confirms: the member's next page is the sign-in page.
        await page.GotoAsync(baseUrl + "/team");
        var question = await Chromium.AnswerConfirmAsync(page, () => row.Locator("form.deactivate button").ClickAsync(), accept: true);
        Assert.StartsWith("Deactivate alan@encom.test?", question);
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("alan@encom.test is deactivated");
        await Assertions.Expect(row.Locator(".access")).ToHaveTextAsync("deactivated");
        await Assertions.Expect(row.Locator("form.reactivate button")).ToBeVisibleAsync();
        await Assertions.Expect(row.Locator(".last-sign-in time")).ToBeVisibleAsync();
        await Shot(page, "team-05-member-deactivated");
        await memberPage.GotoAsync(baseUrl + "/tokens");
        await Assertions.Expect(memberPage).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login"));

        Assert.True(errors.Count == 0, string.Join("\n", errors));
        Assert.True(memberErrors.Count == 0, string.Join("\n", memberErrors));
    }
    /// <summary>
    /// A member's Microsoft accounts (the Outlook add-in's sign-in) are listed in their row; the admin unlinks them after
    /// confirming, and the row no longer lists any.
    /// </summary>
    [Fact]
    public async Task An_admin_sees_a_members_microsoft_accounts_and_unlinks_them_after_confirming()
    {
        var team = $"Encom-{Guid.NewGuid():N}"[..14];
        var admin = await app.NewUserAsync(team: team, plan: Plan.Team, role: TeamRole.Admin, password: Password);
        var member = await app.NewUserAsync(team: team, password: Password);
        // As the add-in's first sign-in and its link page leave them (MicrosoftAccountLinkTests makes them for real).
        await app.WithDbAsync(db =>
        {
            db.UserLogins.Add(new Microsoft.AspNetCore.Identity.IdentityUserLogin<Guid>
            {
                LoginProvider = "Microsoft", ProviderKey = "72f988bf-86f1-41af-91ab-2d7cd011db47/00000000-0000-0000-0000-0000000000aa",
                ProviderDisplayName = "Microsoft", UserId = member.Id,
            });
            db.MicrosoftAccountLinks.Add(new MicrosoftAccountLink
            {
                UserId = member.Id, TenantId = "9188040d-6c67-4c5b-b112-36a304b66dad", ObjectId = "00000000-0000-0000-0000-0000000000bb",
                DisplayName = "Flynn at Dillinger", SignInName = "kflynn@dillinger.test", LinkedAt = DateTimeOffset.UtcNow.AddDays(-2),
            });
            return db.SaveChangesAsync();
        });
        var (page, errors) = await SignedInAsync(admin.Email, Password);
        await page.GotoAsync(baseUrl + "/team");
        var row = page.Locator($"#members tr[data-member='{member.Email}']");
        await Assertions.Expect(row.Locator(".microsoft-accounts li")).ToHaveCountAsync(2);
        await Assertions.Expect(row.Locator(".microsoft-accounts")).ToContainTextAsync("Flynn at Dillinger");
        await Assertions.Expect(row.Locator(".microsoft-accounts")).ToContainTextAsync("the Microsoft account of their email");
        await Assertions.Expect(page.Locator($"#members tr[data-member='{admin.Email}'] .microsoft-accounts")).ToHaveCountAsync(0);
        await Shot(page, "team-06-microsoft-accounts");

        var question = await Chromium.AnswerConfirmAsync(page, () => row.Locator("form.unlink-microsoft button").ClickAsync(), accept: true);
        Assert.StartsWith($"Unlink every Microsoft account of {member.Email}?", question);
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync($"The 2 Microsoft accounts of {member.Email} are unlinked");
        await Assertions.Expect(row.Locator(".microsoft-accounts")).ToHaveCountAsync(0);
        await Shot(page, "team-07-microsoft-accounts-unlinked");
        Assert.Equal(0, app.WithDb(db => db.MicrosoftAccountLinks.Count(l => l.UserId == member.Id) + db.UserLogins.Count(l => l.UserId == member.Id && l.LoginProvider == "Microsoft")));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
