using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Sequences;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>The sequence server (fake sequence clock, recording transport, scheduler passes run by the test) on a real Kestrel port for Chromium.</summary>
public sealed class SequencePagesApp() : SequenceApp(DatabaseProvider.Sqlite);

/// <summary>
/// The sequence pages in Chromium: templates written (a syntax error shown under its field) and previewed for a
/// sample recipient (a missing field named), a sequence made (its validation errors beside their fields), people
/// enrolled by the form and by a CSV file with a bad row (the report names the row and why), the enrolments table
/// after the scheduler sent and a reply stopped one, Stop by hand, and another team's pages are not found.
/// The server runs in this process on a real port so that the test can drive the sequence clock and see what was sent.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class SequencePagesTests : InProcessBrowserTest<SequencePagesApp>
{
    async Task<(IPage Page, TestUser User, List<string> Errors)> SignedInAsync(string? team = null) => await SignedInAsync(await app.NewUserAsync(team, password: Password));

    async Task<(IPage Page, TestUser User, List<string> Errors)> SignedInAsync(TestUser user)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", user.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        return (page, user, errors);
    }

    static ILocator Row(IPage page, string address) => page.Locator($"#enrolments tr[data-address='{address}']");

    [Fact]
    public async Task Templates_a_sequence_enrolment_by_form_and_csv_sending_and_a_reply_that_stops()
    {
        var (page, user, consoleErrors) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);

        // The nav leads to sequences; none yet.
        await page.ClickAsync("header nav >> text=Sequences");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/sequences");
        await Assertions.Expect(page.Locator("#no-sequences")).ToBeVisibleAsync();
        await page.ClickAsync("#templates-link");
        await page.ClickAsync("#new-template");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/templates/new");

        // A syntax error in the body: shown under the body, nothing saved.
        await page.FillAsync("#Name", "Intro");
        await page.FillAsync("#Subject", "A grid for {{ company }}");
        await page.FillAsync("#Html", "<p>Hi {{ first_name, see the grid.</p>");
        await page.ClickAsync("#save");
        var htmlErrors = page.Locator(".field-errors[data-field='html']");
        await Assertions.Expect(htmlErrors).ToContainTextAsync("Body:");
        await Assertions.Expect(page.Locator(".field-errors[data-field='subject']")).ToHaveCountAsync(0);
        Assert.Equal("Intro", await page.InputValueAsync("#Name")); // what was typed stays
        Assert.Equal(0, app.WithDb(db => db.Templates.Count()));

        await page.FillAsync("#Html", "<p>Hi {{ first_name }}, see <a href=\"https://encom.test/grid\">the grid</a> for {{ company }}.</p>");
        await page.ClickAsync("#save");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Intro was created.");
        var introId = app.WithDb(db => db.Templates.Single(t => t.Name == "Intro").Id);
        await Assertions.Expect(page).ToHaveURLAsync($"{baseUrl}/templates/{introId}");

        // A preview for a sample recipient without a company: why it cannot be written; with one, the mail.
        await page.FillAsync("#SampleEmail", "sam@encom.test");
        await page.FillAsync("#SampleFirstName", "Sam");
        await page.ClickAsync("#preview-button");
        await Assertions.Expect(page.Locator("#preview-errors")).ToContainTextAsync("'company' is empty for this recipient.");
        await page.FillAsync("#SampleCompany", "Encom & Sons");
        await page.ClickAsync("#preview-button");
        await Assertions.Expect(page.Locator("#preview-subject")).ToHaveTextAsync("A grid for Encom & Sons");
        await Assertions.Expect(page.FrameLocator("#preview-body").Locator("p")).ToContainTextAsync("Hi Sam, see the grid for Encom & Sons.");
        await Chromium.ShotAsync(page, "30-template-editor");

        // The follow-up: no subject (a reply to the first step) and a custom field.
        await page.GotoAsync(baseUrl + "/templates/new");
        await page.FillAsync("#Name", "Nudge");
        await page.FillAsync("#Html", "<p>{{ first_name }}, did you see my note? The {{ plan }} plan is ready.</p>");
        await page.ClickAsync("#save");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Nudge was created.");
        await page.GotoAsync(baseUrl + "/templates");
        await Assertions.Expect(page.Locator("#templates tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator($"#templates tr[data-template-id='{introId}'] .fields")).ToHaveTextAsync("company first_name");

        // A sequence: first without a name and with the follow-up first (the API's own errors, each by its field), then right.
        await page.GotoAsync(baseUrl + "/sequences");
        await page.ClickAsync("#new-sequence");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/sequences/new");
        Assert.Equal(mailbox.ToString(), await page.InputValueAsync("#Form_MailboxId"));
        Assert.Equal("UTC", await page.InputValueAsync("#Form_TimeZone"));
        var rows = page.Locator(".step-row");
        await rows.Nth(0).Locator(".step-template").SelectOptionAsync(new SelectOptionValue { Label = "Nudge" });
        await rows.Nth(1).Locator(".step-template").SelectOptionAsync(new SelectOptionValue { Label = "Intro" });
        await rows.Nth(1).Locator(".step-start").FillAsync("18:00");
        await page.ClickAsync("#save");
        await Assertions.Expect(page.Locator(".field-errors[data-field='name']")).ToHaveTextAsync("A name of 1 to 200 characters is required.");
        await Assertions.Expect(rows.Nth(0).Locator(".field-errors")).ToContainTextAsync("Step 1: its template has no subject");
        await Assertions.Expect(rows.Nth(1).Locator(".field-errors")).ToContainTextAsync("Step 2: the send window must end after it starts.");
        await Chromium.ShotAsync(page, "33-sequence-form-errors");
        Assert.Equal(0, app.WithDb(db => db.Sequences.Count()));

        await page.FillAsync("#Form_Name", "Outreach");
        await rows.Nth(0).Locator(".step-template").SelectOptionAsync(new SelectOptionValue { Label = "Intro" });
        await rows.Nth(1).Locator(".step-template").SelectOptionAsync(new SelectOptionValue { Label = "Nudge" });
        await rows.Nth(1).Locator(".step-start").FillAsync("09:00");
        await rows.Nth(1).Locator(".step-delay").FillAsync("2");
        await page.ClickAsync("#save");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Outreach was created.");
        var sequence = app.WithDb(db => db.Sequences.Single());
        await Assertions.Expect(page).ToHaveURLAsync($"{baseUrl}/sequences/{sequence.Id}");
        Assert.Equal(2, app.WithDb(db => db.SequenceSteps.Count(s => s.SequenceId == sequence.Id)));
        await Assertions.Expect(page.Locator("#steps tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#steps tbody tr").Nth(1)).ToContainTextAsync("2 business days after the previous step");

        // A template a sequence uses cannot be deleted; the page says which.
        await page.GotoAsync($"{baseUrl}/templates/{introId}");
        Assert.Equal("Delete the template “Intro”? This cannot be undone.",
            await Chromium.AnswerConfirmAsync(page, () => page.ClickAsync("#delete"), accept: true));
        await Assertions.Expect(page.Locator(".field-errors[data-field='form']")).ToContainTextAsync("Sequences use it: Outreach.");
        Assert.Equal(2, app.WithDb(db => db.Templates.Count()));

        // One person by the form, with a custom field.
        await page.GotoAsync($"{baseUrl}/sequences/{sequence.Id}");
        await Assertions.Expect(page.Locator("#no-enrolments")).ToBeVisibleAsync();
        await page.FillAsync("#Person_Email", "sam@encom.test");
        await page.FillAsync("#Person_FirstName", "Sam");
        await page.FillAsync("#Person_Company", "Encom");
        await page.FillAsync("#Person_Fields", "plan=Pro");
        await page.ClickAsync("#enrol-button");
        await Assertions.Expect(page.Locator("#report-summary")).ToContainTextAsync("1 person enrolled");
        await Assertions.Expect(Row(page, "sam@encom.test").Locator(".state")).ToHaveTextAsync("active");

        // Several by a CSV file; row 3 lacks the first name both templates use.
        var csv = "email,first name,company,plan\nalan@encom.test,Alan,Encom,Pro\nlora@encom.test,,Encom,Basic\ndumont@encom.test,Dumont,Encom,Pro\n";
        await page.SetInputFilesAsync("#csv-form input[type=file]", new FilePayload { Name = "people.csv", MimeType = "text/csv", Buffer = Encoding.UTF8.GetBytes(csv) });
        await page.ClickAsync("#csv-button");
        await Assertions.Expect(page.Locator("#report-summary")).ToContainTextAsync("2 people enrolled, 1 row refused");
        var refused = page.Locator("#rejected tbody tr");
        await Assertions.Expect(refused).ToHaveCountAsync(1);
        await Assertions.Expect(refused.Locator(".row-number")).ToHaveTextAsync("3");
        await Assertions.Expect(refused).ToContainTextAsync("lora@encom.test");
        await Assertions.Expect(refused.Locator(".why")).ToContainTextAsync("Step 1 ('Intro'): 'first_name' is empty for this recipient.");
        await Assertions.Expect(page.Locator("#enrolled tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#enrolments tbody tr")).ToHaveCountAsync(3);
        // Due at 09:00 UTC on Monday 7 December (the sequence's zone is UTC).
        await Assertions.Expect(Row(page, "alan@encom.test").Locator(".next")).ToContainTextAsync("2026-12-07 09:00:00 UTC");
        await Assertions.Expect(Row(page, "alan@encom.test").Locator(".step")).ToContainTextAsync("1 of 2");
        await Chromium.ShotAsync(page, "34-sequence-enrol-report");

        // The scheduler sends step 1 when it is due; the page shows each at step 2, due two business days later.
        var due = app.WithDb(db => db.Enrolments.Where(e => e.SequenceId == sequence.Id).ToList()).Max(e => e.NextAt!.Value);
        app.Clock.Advance(due - app.Clock.GetUtcNow());
        await app.PassAsync();
        var sent = Assert.Single(app.Transport.To("sam@encom.test"));
        Assert.Equal("A grid for Encom", sent.Subject);
        Assert.Single(app.Transport.To("alan@encom.test"));
        await page.ReloadAsync();
        await Assertions.Expect(Row(page, "sam@encom.test").Locator(".step")).ToContainTextAsync("2 of 2");
        await Assertions.Expect(Row(page, "sam@encom.test").Locator(".next")).ToContainTextAsync("2026-12-09 09:00:00 UTC");

        // Sam replies (as a mailbox watcher records it); the next pass stops Sam's enrolment and the page says why.
        var step = app.WithDb(db => db.SequenceSends.Single(s => s.EnrolmentId == db.Enrolments.Single(e => e.Address == "sam@encom.test").Id));
        await app.WithDbAsync(async db =>
        {
            var m = db.Messages.Single(x => x.Id == step.TrackedMessageId);
            db.InboundMessages.Add(new InboundMessage
            {
                TeamId = m.TeamId, UserId = m.UserId, ConnectionId = mailbox, ProviderId = "INBOX:1:" + Guid.NewGuid().ToString("N"),
                InternetMessageId = Guid.NewGuid().ToString("N") + "@encom.test", FromAddress = "sam@encom.test", Subject = "Re: " + m.Subject,
                ReceivedAt = app.Clock.GetUtcNow(), Kind = EventKind.Reply, Reason = "reply", TrackedMessageId = m.Id, CopyId = step.CopyId,
                HandledAt = app.Clock.GetUtcNow(),
            });
            await db.SaveChangesAsync();
        });
        await app.PassAsync();
        await page.ReloadAsync();
        var sam = Row(page, "sam@encom.test");
        await Assertions.Expect(sam.Locator(".state")).ToHaveTextAsync("stopped — replied");
        await Assertions.Expect(sam.Locator(".note")).ToContainTextAsync("sam@encom.test answered on 2026-12-07 09:00 UTC.");
        await Assertions.Expect(sam.Locator(".next")).ToHaveTextAsync("—");
        await Assertions.Expect(sam.Locator("button.stop")).ToHaveCountAsync(0);
        await Assertions.Expect(sam.Locator(".step")).ToHaveTextAsync("1 of 2 sent");

        // Alan is stopped by hand.
        Assert.Equal("Stop this sequence for alan@encom.test? Nothing more is sent to them from it.",
            await Chromium.AnswerConfirmAsync(page, () => Row(page, "alan@encom.test").Locator("button.stop").ClickAsync(), accept: true));
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("The enrolment was stopped");
        await Assertions.Expect(Row(page, "alan@encom.test").Locator(".state")).ToHaveTextAsync("stopped — by hand");
        await Assertions.Expect(Row(page, "alan@encom.test").Locator(".note")).ToContainTextAsync($"Stopped by {user.Email}.");
        await Assertions.Expect(page.Locator("#counts .count-active")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#counts .count-stopped")).ToHaveTextAsync("2");
        await Chromium.ShotAsync(page, "31-sequence");

        // On a phone the enrolments stack: each person's state, step and next send are named, and the buttons that
        // stop a live enrolment are on the screen, not behind a sideways scroll.
        await page.SetViewportSizeAsync(390, 844);
        Assert.Equal("block", await page.EvalOnSelectorAsync<string>("#enrolments", "t => getComputedStyle(t).display"));
        var stop = Row(page, "dumont@encom.test").Locator("button.stop");
        await stop.ScrollIntoViewIfNeededAsync();
        var box = (await stop.BoundingBoxAsync())!;
        Assert.True(box.X >= 0 && box.X + box.Width <= 390, $"the Stop button at {box.X}..{box.X + box.Width}");
        Assert.Equal(390, await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"));
        await Assertions.Expect(Row(page, "dumont@encom.test").Locator(".next")).ToBeVisibleAsync();
        await Assertions.Expect(Row(page, "dumont@encom.test").Locator(".note")).ToBeHiddenAsync(); // no reason to give: no empty label
        await Assertions.Expect(Row(page, "alan@encom.test").Locator(".note")).ToBeVisibleAsync();
        await Chromium.ShotAsync(page, "31-sequence-phone");
        await page.SetViewportSizeAsync(1360, 900);

        // Pause and resume.
        await page.ClickAsync("#pause");
        await Assertions.Expect(page.Locator("#sequence-status")).ToHaveTextAsync("paused");
        await page.ClickAsync("#resume");
        await Assertions.Expect(page.Locator("#sequence-status")).ToHaveTextAsync("active");

        // The list: status and counts per state.
        await page.ClickAsync("header nav >> text=Sequences");
        var listed = page.Locator($"#sequences tr[data-sequence-id='{sequence.Id}']");
        await Assertions.Expect(listed.Locator(".name")).ToHaveTextAsync("Outreach");
        await Assertions.Expect(listed.Locator(".count-active")).ToHaveTextAsync("1");
        await Assertions.Expect(listed.Locator(".count-stopped")).ToHaveTextAsync("2");
        await Assertions.Expect(listed).ToContainTextAsync("active");
        await Chromium.ShotAsync(page, "32-sequences");

        // Editing keeps the steps and settings in the form.
        await page.GotoAsync($"{baseUrl}/sequences/{sequence.Id}/edit");
        Assert.Equal("Outreach", await page.InputValueAsync("#Form_Name"));
        Assert.Equal(introId.ToString(), await rows.Nth(0).Locator(".step-template").InputValueAsync());
        Assert.Equal("2", await rows.Nth(1).Locator(".step-delay").InputValueAsync());
        Assert.Equal("", await rows.Nth(2).Locator(".step-template").InputValueAsync());
        await page.FillAsync("#Form_Name", "Outreach (December)");
        await rows.Nth(1).Locator(".step-delay").FillAsync("4");
        await page.ClickAsync("#save");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Outreach (December) was saved.");
        await Assertions.Expect(page.Locator("#steps tbody tr").Nth(1)).ToContainTextAsync("4 business days after the previous step");
        await Assertions.Expect(page.Locator("#enrolments tbody tr")).ToHaveCountAsync(3); // enrolments keep their place

        // Never write again: the address goes on the team's suppression list and its enrolment stops, saying so.
        Assert.StartsWith("Never write to dumont@encom.test again?",
            await Chromium.AnswerConfirmAsync(page, () => Row(page, "dumont@encom.test").Locator("button.suppress").ClickAsync(), accept: true));
        await Assertions.Expect(Row(page, "dumont@encom.test").Locator(".state")).ToHaveTextAsync("stopped — on the suppression list");
        await Assertions.Expect(Row(page, "dumont@encom.test").Locator(".note")).ToContainTextAsync("dumont@encom.test was added to the suppression list.");
        Assert.Equal(SuppressionReason.Manual, app.WithDb(db => db.Suppressions.Single(x => x.Address == "dumont@encom.test").Reason));
        Assert.True(consoleErrors.Count == 0, string.Join("\n", consoleErrors));
    }

    async Task<Guid> SequenceByApiAsync(TestUser user, string name)
    {
        user.Client.BaseAddress = new Uri(baseUrl);
        var mailbox = await app.MailboxAsync(user);
        var template = await user.Client.PostAsJsonAsync("/api/templates", new { name = name + " intro", subject = "Hello {{ first_name }}", html = "<p>Hi</p>" });
        Assert.Equal(HttpStatusCode.Created, template.StatusCode);
        var templateId = JsonDocument.Parse(await template.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        var seq = await user.Client.PostAsJsonAsync("/api/sequences", new { name, mailboxId = mailbox, steps = new[] { new { templateId } } });
        Assert.Equal(HttpStatusCode.Created, seq.StatusCode);
        var id = JsonDocument.Parse(await seq.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        var enrol = await user.Client.PostAsJsonAsync($"/api/sequences/{id}/enrolments", new { recipients = new[] { new { email = "ram@encom.test", firstName = "Ram" } } });
        Assert.Equal(HttpStatusCode.OK, enrol.StatusCode);
        return id;
    }

    [Fact]
    public async Task An_admin_sees_the_teams_sequences_and_a_member_only_their_own()
    {
        var team = $"Encom {Guid.NewGuid():N}";
        var admin = await app.NewUserAsync(team, password: Password); // the team's first user administers it
        var member = await app.NewUserAsync(team, password: Password);
        var adminsOwn = await SequenceByApiAsync(admin, "Admin's outreach");
        var membersOwn = await SequenceByApiAsync(member, "Member's outreach");

        var (page, _, errors) = await SignedInAsync(admin);
        await page.GotoAsync(baseUrl + "/sequences");
        await Assertions.Expect(page.Locator("#sequences tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator($"#sequences tr[data-sequence-id='{membersOwn}']")).ToContainTextAsync(member.Email);
        // The admin sees a member's sequence and its enrolments, but the mail goes from the member's mailbox: no enrol or edit.
        await page.GotoAsync($"{baseUrl}/sequences/{membersOwn}");
        await Assertions.Expect(page.Locator("#enrolments tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("owner: " + member.Email);
        await Assertions.Expect(page.Locator("#enrol-form")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#edit")).ToHaveCountAsync(0);
        Assert.True(errors.Count == 0, string.Join("\n", errors));

        // The owner's forms posted by hand (the page has none for the admin): refused, and the refusal says whose they are,
        // not that a team admin can.
        foreach (var handler in new[] { "Pause", "Resume", "Enrol" })
        {
            await page.GotoAsync($"{baseUrl}/sequences/{membersOwn}");
            var refused = await page.RunAndWaitForResponseAsync(() => page.EvaluateAsync(
                """
                ([action]) => {
                  const form = document.createElement("form");
                  form.method = "post";
                  form.action = action;
                  form.append(document.querySelector("input[name=__RequestVerificationToken]").cloneNode());
                  const email = document.createElement("input");
                  email.name = "Person.Email";
                  email.value = "new@encom.test";
                  form.append(email);
                  document.body.append(form);
                  form.submit();
                }
                """, new[] { $"/sequences/{membersOwn}?handler={handler}" }), r => r.Request.Method == "POST");
            Assert.Equal(403, refused.Status);
            await Assertions.Expect(page.Locator("#error h1")).ToHaveTextAsync("Not allowed");
            await Assertions.Expect(page.Locator("#who-can")).ToHaveTextAsync(
                $"Only the sequence's owner, {member.Email}, can pause or resume it, or enrol people in it: its mail goes from their mailbox.");
            await Assertions.Expect(page.Locator("#error")).Not.ToContainTextAsync("admin");
        }
        await Chromium.ShotAsync(page, "35-sequence-owner-only");
        Assert.Equal(SequenceStatus.Active, app.WithDb(db => db.Sequences.Single(s => s.Id == membersOwn).Status));
        Assert.Equal(1, app.WithDb(db => db.Enrolments.Count(e => e.SequenceId == membersOwn)));
        Assert.Equal(404, (await page.GotoAsync($"{baseUrl}/sequences/{membersOwn}/edit"))!.Status);

        var (memberPage, _, _) = await SignedInAsync(member);
        await memberPage.GotoAsync(baseUrl + "/sequences");
        await Assertions.Expect(memberPage.Locator("#sequences tbody tr")).ToHaveCountAsync(1);
        Assert.Equal(404, (await memberPage.GotoAsync($"{baseUrl}/sequences/{adminsOwn}"))!.Status);
        // Templates are the team's: the member sees the admin's, may preview it, and cannot change it.
        var adminTemplate = app.WithDb(db => db.Templates.Single(t => t.UserId == admin.Id).Id);
        await memberPage.GotoAsync($"{baseUrl}/templates/{adminTemplate}");
        await Assertions.Expect(memberPage.Locator("#read-only")).ToBeVisibleAsync();
        await Assertions.Expect(memberPage.Locator("#save")).ToHaveCountAsync(0);
        await Assertions.Expect(memberPage.Locator("#delete")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task The_sequences_and_documents_pages_lead_to_every_page_at_laptop_and_phone_widths()
    {
        var (page, user, errors) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var start = new DateTimeOffset(2026, 10, 1, 9, 0, 0, TimeSpan.Zero);
        await app.WithDbAsync(async db =>
        {
            for (var i = 0; i < 103; i++)
            {
                db.Sequences.Add(new Sequence { TeamId = user.TeamId, UserId = user.Id, Name = $"Outreach {i:000}", MailboxId = mailbox, TimeZone = "UTC", CreatedAt = start.AddMinutes(-i) });
                db.Contents.Add(new ContentItem
                {
                    TeamId = user.TeamId, UserId = user.Id, Name = $"Deck {i:000}.pdf", FileType = ContentFileType.Pdf, OriginalSha256 = new string('a', 64),
                    OriginalSize = 1000, PdfSha256 = new string('a', 64), PdfSize = 1000, PageCount = 1, CreatedAt = start.AddMinutes(-i),
                });
            }
            await db.SaveChangesAsync();
        });

        foreach (var (path, rows, noun, name) in new[] { ("/sequences", "#sequences tbody tr", "sequences", "Outreach"), ("/documents", "#documents li.document", "documents", "Deck") })
        {
            foreach (var width in new[] { 1280, 390 })
            {
                await page.SetViewportSizeAsync(width, width == 390 ? 844 : 900);
                await page.GotoAsync(baseUrl + path);
                await Assertions.Expect(page.Locator(rows)).ToHaveCountAsync(100);
                await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync($"Showing 1–100 of 103 {noun}");
                await Assertions.Expect(page.Locator("#pager a[rel=prev]")).ToHaveCountAsync(0);
                await page.ClickAsync("#pager a[rel=next]");
                await Assertions.Expect(page.Locator(rows)).ToHaveCountAsync(3);
                await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync($"Showing 101–103 of 103 {noun}");
                await Assertions.Expect(page.Locator(rows).Last).ToContainTextAsync($"{name} 102");
                await Assertions.Expect(page.Locator("#pager a[rel=next]")).ToHaveCountAsync(0);
                // The links are on the screen, not behind a sideways scroll.
                var newer = page.Locator("#pager a[rel=prev]");
                await newer.ScrollIntoViewIfNeededAsync();
                var box = (await newer.BoundingBoxAsync())!;
                Assert.True(box.X >= 0 && box.X + box.Width <= width, $"{path}: Newer at {box.X}..{box.X + box.Width}");
                Assert.Equal(width, await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"));
                await Chromium.ShotAsync(page, $"36-{noun}-older-page-{width}");
                await newer.ClickAsync();
                await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync($"Showing 1–100 of 103 {noun}");
                await Assertions.Expect(page.Locator(rows).First).ToContainTextAsync($"{name} 000");
            }
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task Another_teams_sequence_and_template_pages_are_not_found()
    {
        var other = await app.NewUserAsync();
        other.Client.BaseAddress = new Uri(baseUrl);
        var otherMailbox = await app.MailboxAsync(other);
        var template = await other.Client.PostAsJsonAsync("/api/templates", new { name = "Theirs", subject = "Hello {{ first_name }}", html = "<p>Hi</p>" });
        Assert.Equal(HttpStatusCode.Created, template.StatusCode);
        var templateId = JsonDocument.Parse(await template.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        var seq = await other.Client.PostAsJsonAsync("/api/sequences", new { name = "Their outreach", mailboxId = otherMailbox, steps = new[] { new { templateId } } });
        Assert.Equal(HttpStatusCode.Created, seq.StatusCode);
        var sequenceId = JsonDocument.Parse(await seq.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();

        var (page, _, _) = await SignedInAsync();
        // Without a mailbox of their own, the form says so and where to connect one.
        await page.GotoAsync(baseUrl + "/sequences/new");
        await Assertions.Expect(page.Locator("#no-mailbox")).ToContainTextAsync("You have no connected mailbox");
        await Assertions.Expect(page.Locator("#no-mailbox a")).ToHaveAttributeAsync("href", "/mailboxes");
        foreach (var path in new[] { $"/sequences/{sequenceId}", $"/sequences/{sequenceId}/edit", $"/templates/{templateId}" })
        {
            var response = await page.GotoAsync(baseUrl + path);
            Assert.True(response!.Status == 404, $"{path}: {response.Status}");
        }
        await page.GotoAsync(baseUrl + "/sequences");
        await Assertions.Expect(page.Locator("#no-sequences")).ToBeVisibleAsync();
        await page.GotoAsync(baseUrl + "/templates");
        await Assertions.Expect(page.Locator("#no-templates")).ToBeVisibleAsync();
    }
}
