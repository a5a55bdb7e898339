using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A refused form's fields are tied to their problems: the field is marked invalid (aria-invalid) and its accessible
/// description is the problem's text (aria-describedby), as Chromium computes them, on forms that keep their problems in
/// either way the pages do (beside each field on Compose, above the form on API tokens, Password and Team); the fields
/// without a problem, and those of the page's other forms, are left alone. Screenshots.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class FieldErrorsBrowserTests : InProcessBrowserTest<ComposePageSqliteApp>
{
    async Task<(IPage Page, List<string> Errors)> SignedInAsync(string email)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        return (page, errors);
    }

    static async Task InvalidAsync(ILocator field, string problem)
    {
        await Assertions.Expect(field).ToHaveAttributeAsync("aria-invalid", "true");
        await Assertions.Expect(field).ToHaveAccessibleDescriptionAsync(problem);
    }

    static async Task ValidAsync(ILocator field)
    {
        await Assertions.Expect(field).Not.ToHaveAttributeAsync("aria-invalid", "true");
        await Assertions.Expect(field).ToHaveAccessibleDescriptionAsync("");
    }

    [Fact]
    public async Task A_refused_forms_fields_are_marked_invalid_and_described_by_their_problems()
    {
        var team = $"Encom-{Guid.NewGuid():N}"[..14];
        var admin = await app.NewUserAsync(team: team, plan: Plan.Team, role: TeamRole.Admin, password: Password);
        var member = await app.NewUserAsync(team: team, password: Password);
        var taken = await app.NewUserAsync();
        await app.MailboxAsync(admin);
        var (page, errors) = await SignedInAsync(admin.Email);

        // Compose: problems beside their fields; the editor (what the user types the body in) is the body's field.
        await page.GotoAsync(baseUrl + "/compose");
        await page.FillAsync("#To", "not-an-address");
        await page.FillAsync("#Subject", "The grid");
        await page.ClickAsync("#send");
        await Assertions.Expect(page.Locator(".field-errors[data-field='to']")).ToBeVisibleAsync();
        await InvalidAsync(page.Locator("#To"), "'not-an-address' is not an email address.");
        await InvalidAsync(page.Locator("#Body"), "The message is empty: write something to send.");
        await ValidAsync(page.Locator("#Subject"));
        await ValidAsync(page.Locator("#Cc"));
        await Chromium.ShotAsync(page, "field-errors-compose");

        // API tokens: the problem in the summary above the form.
        await page.GotoAsync(baseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "   ");
        await page.ClickAsync("form.inline button[type=submit]");
        await InvalidAsync(page.Locator("input[name=Name]"), "Give the token a name of 1 to 100 characters.");
        await Chromium.ShotAsync(page, "field-errors-tokens");

        // Password: only the field that is wrong.
        await page.GotoAsync(baseUrl + "/password");
        await page.FillAsync("input[name=Current]", Password);
        await page.FillAsync("input[name=New]", "Another-Horse-10");
        await page.FillAsync("input[name=Confirm]", "Another-Horse-11");
        await page.ClickAsync("section form button.primary");
        await Assertions.Expect(page.Locator(".errors")).ToBeVisibleAsync();
        var problem = (await page.Locator(".errors li").TextContentAsync())!.Trim();
        await InvalidAsync(page.Locator("input[name=Confirm]"), problem);
        await ValidAsync(page.Locator("input[name=Current]"));
        await ValidAsync(page.Locator("input[name=New]"));

        // Team: the form to add a member, not the members' own role forms beside it, which have a Role field too.
        await page.GotoAsync(baseUrl + "/team");
        await page.FillAsync("#add-member input[name=Email]", taken.Email);
        await page.ClickAsync("#add-member button[type=submit]");
        await InvalidAsync(page.Locator("#add-member input[name=Email]"), $"{taken.Email} already belongs to a user.");
        await ValidAsync(page.Locator("#add-member select[name=Role]"));
        // A role the form does not offer (as a hand-made post would send it): the add form's Role, and no member's.
        await page.FillAsync("#add-member input[name=Email]", "alan@encom.test");
        await page.EvaluateAsync("() => { const o = document.querySelector('#add-member select[name=Role] option'); o.value = 'Owner'; o.selected = true; }");
        await page.ClickAsync("#add-member button[type=submit]");
        await InvalidAsync(page.Locator("#add-member select[name=Role]"), "Choose the new member's role: Member or Admin.");
        await ValidAsync(page.Locator("#add-member input[name=Email]"));
        await ValidAsync(page.Locator($"#members tr[data-member='{member.Email}'] select[name=Role]"));
        await ValidAsync(page.Locator($"#members tr[data-member='{admin.Email}'] select[name=Role]"));
        await Chromium.ShotAsync(page, "field-errors-team");
        // The browser reports a refused form's status as an error of its own: nothing else may be there.
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
