using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A Compose form sent after the web session ended (the password was changed in another browser) went to the sign-in
/// page and what was typed was lost. Now the tab keeps the draft (app.js, sessionStorage) from the post until the server
/// answers with a page of its own: signed in again, the user finds it back on Compose — addresses, subject, the formatted
/// body, the form's key — with the files named to attach again (a page cannot keep files). Sent, it is gone; it is never
/// shown to another user of the tab, and signing out removes it. Screenshots.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ComposeDraftBrowserTests : InProcessBrowserTest<ComposePageSqliteApp>
{
    const string NewPassword = "Changed-Horse-10";

    async Task<IPage> SignedInAsync(IBrowserContext context, string email, string password, List<string> errors)
    {
        var page = await context.NewPageAsync();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        return page;
    }

    static Task<string?> StoredDraftAsync(IPage page) => page.EvaluateAsync<string?>("() => sessionStorage.getItem('et-compose-draft')");

    [Fact]
    public async Task A_draft_sent_after_the_session_ended_is_back_on_compose_after_signing_in_again()
    {
        var user = await app.NewUserAsync(password: Password);
        var someoneElse = await app.NewUserAsync(password: Password);
        await app.MailboxAsync(user);
        var errors = new List<string>();
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1024, Height = 900 } });
        var page = await SignedInAsync(context, user.Email, Password, errors);

        await page.GotoAsync(baseUrl + "/compose");
        await page.FillAsync("#To", "alan@encom.test");
        await page.FillAsync("#Cc", "Lora Baines <lora@encom.test>");
        await page.FillAsync("#Subject", "Pricing for the grid");
        await page.ClickAsync("#Body");
        await page.Keyboard.TypeAsync("Hi Alan, the ");
        await page.ClickAsync("button[data-command=bold]");
        await page.Keyboard.TypeAsync("numbers");
        await page.ClickAsync("button[data-command=bold]");
        await page.Keyboard.TypeAsync(" are attached.");
        FilePayload Notes() => new() { Name = "notes.txt", MimeType = "text/plain", Buffer = "Bring the grid plans."u8.ToArray() };
        await page.SetInputFilesAsync("#Files", [Notes()]);
        var key = await page.InputValueAsync("input[name=Key]");

        // Meanwhile the password is changed in another browser: this one's session ends.
        var elsewhere = await browser.NewContextAsync();
        var other = await SignedInAsync(elsewhere, user.Email, Password, errors);
        await other.GotoAsync(baseUrl + "/password");
        await other.FillAsync("input[name=Current]", Password);
        await other.FillAsync("input[name=New]", NewPassword);
        await other.FillAsync("input[name=Confirm]", NewPassword);
        await other.ClickAsync("section form button.primary");
        await Assertions.Expect(other.Locator("#changed")).ToBeVisibleAsync();

        // Send: the server sends the browser to sign in; nothing was sent.
        await page.ClickAsync("#send");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/login?ReturnUrl=%2Fcompose");
        Assert.Empty(app.Transport.To("alan@encom.test"));
        var stored = await StoredDraftAsync(page);
        Assert.NotNull(stored);
        Assert.Contains("notes.txt", stored);
        Assert.DoesNotContain("Bring the grid plans", stored); // a file's name and size, never its content

        // Signed in again: the draft is back, as typed, with its key; the file is named, to attach again.
        await page.FillAsync("#Email", user.Email);
        await page.FillAsync("#Password", NewPassword);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/compose");
        await Assertions.Expect(page.Locator("#draft-restored")).ToContainTextAsync("Your message was not sent.");
        await Assertions.Expect(page.Locator("#draft-attach-again")).ToContainTextAsync("notes.txt (21 bytes)");
        await Assertions.Expect(page.Locator("#draft-restored")).ToBeFocusedAsync();
        await Assertions.Expect(page.Locator("#To")).ToHaveValueAsync("alan@encom.test");
        await Assertions.Expect(page.Locator("#Cc")).ToHaveValueAsync("Lora Baines <lora@encom.test>");
        await Assertions.Expect(page.Locator("#Subject")).ToHaveValueAsync("Pricing for the grid");
        await Assertions.Expect(page.Locator("#Body b")).ToHaveTextAsync("numbers");
        await Assertions.Expect(page.Locator("#Body")).ToHaveTextAsync("Hi Alan, the numbers are attached.");
        Assert.Equal(key, await page.InputValueAsync("input[name=Key]"));
        await Chromium.ShotAsync(page, "49-compose-draft-restored");

        // Attached again and sent: the message is the one typed, and the draft is gone.
        await page.SetInputFilesAsync("#Files", [Notes()]);
        await page.ClickAsync("#send");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/messages/" + key);
        await Assertions.Expect(page.Locator("#notice")).ToHaveTextAsync("Sent to 2 recipients.");
        // A copy for each recipient, each showing both.
        var copies = app.Transport.To("alan@encom.test");
        Assert.Equal(2, copies.Count);
        var sent = copies[0];
        Assert.Equal("Pricing for the grid", sent.Subject);
        Assert.Contains("<b>numbers</b>", sent.HtmlBody);
        Assert.Equal(["notes.txt"], sent.Attachments.OfType<MimeKit.MimePart>().Select(f => f.FileName));
        Assert.Null(await StoredDraftAsync(page));
        await page.GotoAsync(baseUrl + "/compose");
        await Assertions.Expect(page.Locator("#To")).ToHaveValueAsync("");
        await Assertions.Expect(page.Locator("#draft-restored")).ToHaveCountAsync(0);

        // A draft left in the tab is not shown to someone else who signs in there after the session ended, and is dropped.
        await page.EvaluateAsync("(d) => sessionStorage.setItem('et-compose-draft', d)", stored);
        await context.ClearCookiesAsync();
        await page.GotoAsync(baseUrl + "/compose");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/login?ReturnUrl=%2Fcompose");
        await page.FillAsync("#Email", someoneElse.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/compose");
        await Assertions.Expect(page.Locator("#To")).ToHaveValueAsync("");
        await Assertions.Expect(page.Locator("#draft-restored")).ToHaveCountAsync(0);
        Assert.Null(await StoredDraftAsync(page));

        // Signing out drops a draft the tab still holds.
        await page.EvaluateAsync("(d) => sessionStorage.setItem('et-compose-draft', d)", stored);
        await page.ClickAsync("header form button");
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login"));
        Assert.Null(await StoredDraftAsync(page));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
