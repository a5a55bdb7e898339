using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>The server with its relay (a local fake) and the invitation links' clock in the test's hand, on a real Kestrel port.</summary>
public sealed class TeamInvitationBrowserApp() : PasswordResetApp(DatabaseProvider.Sqlite);

/// <summary>
/// Invitations in Chromium: an admin adds members, who show as invited with when the invitation expires; one opens the
/// mailed link, sees the team and the admin who invited them, chooses a password and is signed in; the admin revokes
/// another's invitation after confirming, and its link says it was revoked; a third's expires, on the Team page and on
/// its link's page. Each step's screenshot is saved.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class TeamInvitationBrowserTests : InProcessBrowserTest<TeamInvitationBrowserApp>
{
    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    async Task<(IPage Page, List<string> Errors)> NewPageAsync()
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        return (page, errors);
    }

    /// <summary>The link in the invitation mail to <paramref name="address"/>, on this server's port (the mail's is the configured public base URL).</summary>
    async Task<string> LinkToAsync(string address)
    {
        var url = Regex.Match((await app.Relay.MailAsync(address)).TextBody ?? "", @"http://localhost(/\S+)").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(url));
        return baseUrl + url;
    }

    async Task AddAsync(IPage page, string email, string name)
    {
        await page.FillAsync("#add-member input[name=Email]", email);
        await page.FillAsync("#add-member input[name=DisplayName]", name);
        await page.ClickAsync("#add-member button[type=submit]");
        await Assertions.Expect(page.Locator("#invited")).ToContainTextAsync($"{email} was added and mailed an invitation");
    }

    [Fact]
    public async Task Invited_members_show_as_invited_accept_on_their_own_page_and_a_revoked_or_expired_link_says_so()
    {
        var team = $"Encom-{Guid.NewGuid():N}"[..14];
        var admin = await app.NewUserAsync(team: team, plan: Plan.Team, role: TeamRole.Admin, password: Password);
        var (page, errors) = await NewPageAsync();
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", admin.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        await page.GotoAsync(baseUrl + "/team");

        await AddAsync(page, "alan@encom.test", "Alan Bradley");
        await AddAsync(page, "lora@encom.test", "Lora Baines");
        await AddAsync(page, "ram@encom.test", "Ram");
        var alan = page.Locator("#members tr[data-member='alan@encom.test']");
        await Assertions.Expect(alan.Locator(".access .badge")).ToHaveTextAsync("invited");
        // Both times in the reader's own time zone (the page's script), as every time on the page.
        await Assertions.Expect(alan.Locator(".access .invitation")).ToHaveTextAsync(new Regex(@"^Invited \S.* · expires \S.*$"));
        await Assertions.Expect(alan.Locator(".access .invitation time")).ToHaveCountAsync(2);
        await Assertions.Expect(alan.Locator("form.invite button")).ToHaveTextAsync("Resend invitation");
        await Assertions.Expect(alan.Locator("form.revoke button")).ToHaveTextAsync("Revoke invitation");
        await Shot(page, "invite-01-team-members-invited");

        // Alan opens his link: his own page, naming the team and who invited him; choosing a password signs him in.
        var (alanPage, alanErrors) = await NewPageAsync();
        await alanPage.GotoAsync(await LinkToAsync("alan@encom.test"));
        await Assertions.Expect(alanPage).ToHaveURLAsync(new Regex("/accept-invitation\\?"));
        await Assertions.Expect(alanPage.Locator("h1")).ToHaveTextAsync($"Join the team {team}");
        await Assertions.Expect(alanPage.Locator("#invited-by")).ToContainTextAsync($"{admin.Email} invited alan@encom.test to the team {team}");
        await Shot(alanPage, "invite-02-accept-page");
        await alanPage.FillAsync("input[name=New]", "Alan-chose-this-1");
        await alanPage.FillAsync("input[name=Confirm]", "Alan-chose-this-1");
        await alanPage.ClickAsync("#accept-invitation button.primary");
        await Assertions.Expect(alanPage).ToHaveURLAsync(baseUrl + "/");
        await Assertions.Expect(alanPage.Locator("header .who .email")).ToHaveTextAsync("alan@encom.test");
        await Shot(alanPage, "invite-03-accepted-signed-in");

        // Lora's invitation is revoked after the admin confirms: she never signed in, so she is removed.
        var loraLink = await LinkToAsync("lora@encom.test");
        await page.GotoAsync(baseUrl + "/team");
        await Assertions.Expect(alan.Locator(".access .badge")).ToHaveTextAsync("can sign in");
        var lora = page.Locator("#members tr[data-member='lora@encom.test']");
        var question = await Chromium.AnswerConfirmAsync(page, () => lora.Locator("form.revoke button").ClickAsync(), accept: true);
        Assert.StartsWith("Revoke the invitation of lora@encom.test?", question);
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("The invitation of lora@encom.test is revoked and they are removed from the team");
        await Assertions.Expect(lora).ToHaveCountAsync(0);
        await Shot(page, "invite-04-invitation-revoked");
        var (loraPage, loraErrors) = await NewPageAsync();
        await loraPage.GotoAsync(loraLink);
        await Assertions.Expect(loraPage.Locator("#link-revoked")).ToContainTextAsync("This invitation was revoked by an admin of the team");
        await Shot(loraPage, "invite-05-link-revoked");

        // Ram's is left past its lifetime: expired on the Team page and on its link's page.
        var ramLink = await LinkToAsync("ram@encom.test");
        app.Clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(1));
        await page.GotoAsync(baseUrl + "/team");
        var ram = page.Locator("#members tr[data-member='ram@encom.test']");
        await Assertions.Expect(ram.Locator(".access .badge")).ToHaveTextAsync("invitation expired");
        await Assertions.Expect(ram.Locator("form.invite button")).ToHaveTextAsync("Resend invitation");
        await Shot(page, "invite-06-team-invitation-expired");
        var (ramPage, ramErrors) = await NewPageAsync();
        await ramPage.GotoAsync(ramLink);
        await Assertions.Expect(ramPage.Locator("#link-expired")).ToContainTextAsync("This invitation has expired");
        await Shot(ramPage, "invite-07-link-expired");

        // The refused links' pages answer 410, which the browser reports as an error of its own: that was the point.
        loraErrors.RemoveAll(e => e.Contains("status of 410", StringComparison.Ordinal));
        ramErrors.RemoveAll(e => e.Contains("status of 410", StringComparison.Ordinal));
        foreach (var list in new[] { errors, alanErrors, loraErrors, ramErrors }) Assert.True(list.Count == 0, string.Join("\n", list));
    }
}
