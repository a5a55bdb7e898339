using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Pages;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Sequences;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The Compose page (/compose): a tracked email written and sent through one of the user's mailboxes by the API's send
/// path. Bad addresses and an empty body come back beside their fields with everything typed kept; only mailboxes that
/// can send can be chosen, and with none the page says how to connect one; a send lands on the message's page; a
/// mailbox that cannot send keeps the draft; the same form posted twice is one message sent once; and another user's
/// mailbox cannot be used.
/// </summary>
public abstract class ComposePageTests(ComposePageApp app)
{
    const string Password = "Correct-horse-battery-9";

    async Task<(TestUser User, HttpClient Web)> SignedInAsync(Plan plan = Plan.Team)
    {
        var user = await app.NewUserAsync(plan: plan, password: Password);
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var res = await SignInTests.PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return (user, client);
    }

    /// <summary>The compose form as the page gave it (its key and antiforgery token), with these fields filled in.</summary>
    static async Task<Dictionary<string, string>> FormAsync(HttpClient web, Dictionary<string, string> fields)
    {
        var page = await web.GetStringAsync("/compose");
        fields["__RequestVerificationToken"] = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        fields.TryAdd("Key", Regex.Match(page, "name=\"Key\" value=\"([^\"]+)\"").Groups[1].Value);
        return fields;
    }

    static Task<HttpResponseMessage> PostAsync(HttpClient web, Dictionary<string, string> form) =>
        web.PostAsync("/compose", new FormUrlEncodedContent(form));

    static string Errors(string html, string field) =>
        WebUtility.HtmlDecode(Regex.Match(html, $"<div role=\"alert\">\\s*<ul class=\"field-errors\" data-field=\"{field}\"[^>]*>(.*?)</ul>", RegexOptions.Singleline).Groups[1].Value);

    static string Value(string html, string id) =>
        WebUtility.HtmlDecode(Regex.Match(html, $"id=\"{id}\" value=\"([^\"]*)\"").Groups[1].Value);

    static string Address() => $"r{Guid.NewGuid():N}"[..12] + "@encom.test";

    int Messages(Guid userId) => app.WithDb(db => db.Messages.Count(m => m.UserId == userId));

    [Fact]
    public async Task Bad_addresses_and_an_empty_body_are_shown_beside_their_fields_and_nothing_typed_is_lost()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var alan = Address();
        var form = await FormAsync(web, new()
        {
            ["MailboxId"] = mailbox.ToString(), ["To"] = $"{alan}, not-an-address", ["Cc"] = "lora@", ["Bcc"] = "\"Bradley, Alan\" <alan.b@encom.test>",
            ["Subject"] = "The grid", ["Html"] = "<p><br></p>", ["PerRecipient"] = "false",
        });
        var res = await PostAsync(web, form);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = await res.Content.ReadAsStringAsync();
        Assert.Equal("'not-an-address' is not an email address.", Errors(html, "to").Replace("<li>", "").Replace("</li>", "").Trim());
        Assert.Contains("'lora@' is not an email address.", Errors(html, "cc"));
        Assert.Equal("", Errors(html, "bcc")); // a quoted name with a comma is one address
        Assert.Contains("The message is empty", Errors(html, "body"));
        Assert.Equal("", Errors(html, "mailbox"));
        // Everything as typed, the form's key and the choices too.
        Assert.Equal($"{alan}, not-an-address", Value(html, "To"));
        Assert.Equal("lora@", Value(html, "Cc"));
        Assert.Equal("\"Bradley, Alan\" <alan.b@encom.test>", Value(html, "Bcc"));
        Assert.Equal("The grid", Value(html, "Subject"));
        Assert.Contains($"name=\"Key\" value=\"{form["Key"]}\"", html);
        Assert.Matches($"<option value=\"{mailbox}\" selected=\"selected\"", html);
        Assert.DoesNotMatch("id=\"PerRecipient\" value=\"true\" checked", html);
        Assert.Equal(0, Messages(user.Id));

        // No recipient at all: said under To, in the API's words.
        form = await FormAsync(web, new() { ["MailboxId"] = mailbox.ToString(), ["Subject"] = "x", ["Text"] = "Hello" });
        html = await (await PostAsync(web, form)).Content.ReadAsStringAsync();
        Assert.Contains("At least one recipient (To, Cc or Bcc) is required.", Errors(html, "to"));
        Assert.Contains(">Hello</textarea>", html); // the plain-text body stays in its box
        Assert.Empty(app.Transport.To(alan));
    }

    [Fact]
    public async Task Only_a_mailbox_that_can_send_can_be_chosen_and_without_one_the_page_says_how_to_connect_one()
    {
        var (user, web) = await SignedInAsync();
        var page = await web.GetStringAsync("/compose");
        Assert.Contains("id=\"no-mailbox\"", page);
        Assert.Contains("<a href=\"/mailboxes\">Connect a mailbox</a>", page);
        Assert.Matches("<button type=\"submit\" class=\"primary\" id=\"send\" disabled=\"disabled\"", page);

        // One that needs reconnecting is listed as such and cannot be chosen; posted all the same, it is refused by the send.
        var broken = await app.MailboxAsync(user);
        await app.WithDbAsync(async db =>
        {
            var m = await db.Mailboxes.SingleAsync(x => x.Id == broken);
            m.Status = MailboxStatus.NeedsReconnect;
            m.StatusMessage = "535 authentication failed";
            await db.SaveChangesAsync();
        });
        page = WebUtility.HtmlDecode(await web.GetStringAsync("/compose"));
        Assert.Contains($"<option value=\"{broken}\" disabled=\"disabled\">{user.Email} — needs reconnecting</option>", page);
        Assert.Contains("Reconnect it under Mailboxes", page);
        var to = Address();
        var res = await PostAsync(web, await FormAsync(web, new()
        {
            ["MailboxId"] = broken.ToString(), ["To"] = to, ["Subject"] = "Hi", ["Html"] = "<p>Hi there</p>",
        }));
        var html = await res.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Contains("The mailbox needs to be reconnected.", html);
        Assert.Contains("535 authentication failed", html);
        Assert.Equal(to, Value(html, "To"));
        Assert.Equal("<p>Hi there</p>", Value(html, "Html"));
        Assert.Equal(0, Messages(user.Id));

        // An active one is offered first, and chosen.
        var alias = $"sales{Guid.NewGuid():N}"[..14] + "@sender.test";
        var active = await app.MailboxAsync(user, alias);
        page = await web.GetStringAsync("/compose");
        Assert.Contains($"<option value=\"{active}\" selected=\"selected\">{alias}</option>", page);
        Assert.DoesNotContain("id=\"no-mailbox\"", page);
    }

    [Fact]
    public async Task A_message_is_sent_through_the_mailbox_with_tracked_links_and_only_the_editors_formats_and_lands_on_its_page()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var (alan, lora) = (Address(), Address());
        var form = await FormAsync(web, new()
        {
            ["MailboxId"] = mailbox.ToString(), ["To"] = $"Alan Bradley <{alan}>; ", ["Cc"] = lora, ["Subject"] = "The grid",
            ["Html"] = "<p>Hi <b>Alan</b>, see <a href=\"https://encom.test/grid\" onclick=\"steal()\">the <i>grid</i></a>.</p>" +
                       "<ul><li>one</li></ul><script>alert(1)</script><p style=\"color:red\" class=\"MsoNormal\"><span>pasted</span></p>",
            ["PerRecipient"] = "true",
        });
        var res = await PostAsync(web, form);
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.Equal($"/messages/{form["Key"]}", res.Headers.Location?.OriginalString);

        var message = app.WithDb(db => db.Messages.Include(m => m.Recipients).AsNoTracking().Single(m => m.UserId == user.Id));
        Assert.Equal(Guid.Parse(form["Key"]), message.Id);
        Assert.Equal(MessageSource.Web, message.Source);
        Assert.True(message.PerRecipient);
        Assert.NotNull(message.SentAt);
        Assert.Equal(["Alan Bradley"], message.Recipients.Where(r => r.Address == alan).Select(r => r.Name));

        // One copy each; the link tracked, the editor's formats kept, the rest gone.
        var copies = app.Transport.Sent.Where(m => m.Subject == "The grid" && m.To.Mailboxes.Any(a => a.Address == alan)).ToList();
        Assert.Equal(2, copies.Count);
        Assert.Equal(2, copies.Select(c => c.MessageId).Distinct().Count());
        var copy = copies[0];
        Assert.Equal("The grid", copy.Subject);
        Assert.Equal(user.Email, copy.From.Mailboxes.Single().Address);
        var body = copy.HtmlBody;
        Assert.Contains("<b>Alan</b>", body);
        Assert.Contains("<i>grid</i>", body);
        Assert.Contains("<ul><li>one</li></ul>", body);
        Assert.Contains("<p>pasted</p>", body);
        Assert.DoesNotContain("https://encom.test/grid\"", body);
        Assert.Matches("<a href=\"http[^\"]+/c/[^\"]+\">the <i>grid</i></a>", body);
        foreach (var gone in new[] { "script", "alert(1)", "onclick", "color:red", "MsoNormal", "<span" }) Assert.DoesNotContain(gone, body);
        Assert.Contains("Hi Alan, see the grid", copy.TextBody);

        var page = await (await web.GetAsync(res.Headers.Location)).Content.ReadAsStringAsync();
        Assert.Contains("Sent to 2 recipients.", page);
        Assert.Contains(alan, page);
    }

    [Fact]
    public async Task A_mailbox_that_cannot_send_leaves_the_draft_on_the_page_and_nothing_registered()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var to = Address();
        app.Transport.FailNext[to] = new MailboxException("The SMTP server refused the login: 535 5.7.8 authentication failed", needsReconnect: true);
        var form = await FormAsync(web, new()
        {
            ["MailboxId"] = mailbox.ToString(), ["To"] = to, ["Subject"] = "Pricing", ["Html"] = "<p>The <b>numbers</b></p>",
        });
        var res = await PostAsync(web, form);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = await res.Content.ReadAsStringAsync();
        Assert.Contains("The mailbox could not send; nothing was sent.", html);
        Assert.Contains("535 5.7.8 authentication failed", html);
        Assert.Equal(to, Value(html, "To"));
        Assert.Equal("Pricing", Value(html, "Subject"));
        Assert.Equal("<p>The <b>numbers</b></p>", Value(html, "Html"));
        // The mailbox is now shown as needing a reconnect; the form keeps its key, since nothing was made with it.
        Assert.Contains($"<option value=\"{mailbox}\" disabled=\"disabled\">{user.Email} — needs reconnecting</option>", WebUtility.HtmlDecode(html));
        Assert.Contains($"name=\"Key\" value=\"{form["Key"]}\"", html);
        Assert.Equal(0, Messages(user.Id));
        Assert.Empty(app.Transport.To(to));
    }

    /// <summary>
    /// The mailbox chosen fails and needs reconnecting: the form comes back with no mailbox chosen, not with the next one
    /// that can send, which the browser chose by itself (the first option not disabled), so that Send again went from an
    /// address the user had not picked.
    /// </summary>
    [Fact]
    public async Task A_mailbox_that_failed_is_not_swapped_for_another_one_on_the_form()
    {
        var (user, web) = await SignedInAsync();
        var sales = $"sales-{Guid.NewGuid():N}"[..14] + "@encom.test";
        var other = await app.MailboxAsync(user, sales);
        var chosen = await app.MailboxAsync(user);
        var to = Address();
        app.Transport.FailNext[to] = new MailboxException("The SMTP server refused the login: 535 5.7.8 authentication failed", needsReconnect: true);
        var form = await FormAsync(web, new() { ["MailboxId"] = chosen.ToString(), ["To"] = to, ["Subject"] = "Pricing", ["Html"] = "<p>The numbers</p>" });
        var html = WebUtility.HtmlDecode(await (await PostAsync(web, form)).Content.ReadAsStringAsync());
        Assert.Contains("535 5.7.8 authentication failed", html);
        var select = Regex.Match(html, "<select name=\"MailboxId\".*?</select>", RegexOptions.Singleline).Value;
        Assert.Contains($"<option value=\"{chosen}\" disabled=\"disabled\">{user.Email} — needs reconnecting</option>", select);
        Assert.Contains($"<option value=\"{other}\">{sales}</option>", select);
        Assert.StartsWith("<option value=\"\" selected>Choose a mailbox</option>", Regex.Match(select, "<option.*", RegexOptions.Singleline).Value);

        // Sent again as the page then posts it: the mailbox to choose is asked for, and nothing goes.
        form["MailboxId"] = "";
        html = WebUtility.HtmlDecode(await (await PostAsync(web, form)).Content.ReadAsStringAsync());
        Assert.Contains("Choose the mailbox to send from.", Errors(html, "mailbox"));
        Assert.Empty(app.Transport.To(to));
        Assert.Equal(0, Messages(user.Id));
    }

    [Fact]
    public async Task The_same_form_posted_twice_or_at_once_is_one_message_sent_once()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var to = Address();
        var form = await FormAsync(web, new() { ["MailboxId"] = mailbox.ToString(), ["To"] = to, ["Subject"] = "Once", ["Html"] = "<p>Once</p>" });

        var first = await PostAsync(web, form);
        var again = await PostAsync(web, form);
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        Assert.Equal(first.Headers.Location, again.Headers.Location);
        Assert.Single(app.Transport.To(to));
        Assert.Equal(1, Messages(user.Id));

        // Two posts of a new form at the same moment (a double click): one registers and sends, the other finds it.
        var other = Address();
        form = await FormAsync(web, new() { ["MailboxId"] = mailbox.ToString(), ["To"] = other, ["Subject"] = "Twice", ["Html"] = "<p>Twice</p>" });
        var both = await Task.WhenAll(PostAsync(web, form), PostAsync(web, form));
        Assert.All(both, r => Assert.Equal(HttpStatusCode.Redirect, r.StatusCode));
        Assert.All(both, r => Assert.Equal($"/messages/{form["Key"]}", r.Headers.Location?.OriginalString));
        Assert.Single(app.Transport.To(other));
        Assert.Equal(2, Messages(user.Id));
    }

    [Fact]
    public async Task Another_users_mailbox_cannot_be_chosen_or_sent_from_and_their_message_ids_are_not_answered()
    {
        var (owner, ownerWeb) = await SignedInAsync();
        var ownerMailbox = await app.MailboxAsync(owner);
        var (stranger, web) = await SignedInAsync();
        Assert.DoesNotContain(ownerMailbox.ToString(), await web.GetStringAsync("/compose"));

        var to = Address();
        var res = await PostAsync(web, await FormAsync(web, new()
        {
            ["MailboxId"] = ownerMailbox.ToString(), ["To"] = to, ["Subject"] = "Hi", ["Html"] = "<p>Hi</p>",
        }));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Contains("No such mailbox.", Errors(await res.Content.ReadAsStringAsync(), "mailbox"));
        Assert.Empty(app.Transport.To(to));
        Assert.Equal(0, Messages(stranger.Id));

        // The owner's sent message's id as the stranger's form key: not taken for the stranger's message, nor sent as it.
        var sent = await ownerWeb.PostAsync("/compose", new FormUrlEncodedContent(await FormAsync(ownerWeb, new()
        {
            ["MailboxId"] = ownerMailbox.ToString(), ["To"] = Address(), ["Subject"] = "Mine", ["Html"] = "<p>Mine</p>",
        })));
        var ownerMessage = sent.Headers.Location!.OriginalString["/messages/".Length..];
        var strangerMailbox = await app.MailboxAsync(stranger);
        var other = Address();
        res = await PostAsync(web, await FormAsync(web, new()
        {
            ["Key"] = ownerMessage, ["MailboxId"] = strangerMailbox.ToString(), ["To"] = other, ["Subject"] = "Theirs", ["Html"] = "<p>Theirs</p>",
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.NotEqual($"/messages/{ownerMessage}", res.Headers.Location?.OriginalString);
        Assert.Single(app.Transport.To(other));
        Assert.Equal(1, Messages(stranger.Id));
    }

    /// <summary>
    /// The documents Compose offers are the library as the Documents page shows it: a member's own, a team admin's the
    /// team's. A member was offered every colleague's document (its name and page count) and could send tracked links to
    /// one, which the Documents page, the add-ins and the content API refuse them.
    /// </summary>
    [Fact]
    public async Task A_member_is_offered_only_their_own_documents_and_cannot_link_a_colleagues()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, password: Password);
        ContentItem Document(TestUser owner, string name) => new()
        {
            TeamId = owner.TeamId, UserId = owner.Id, Name = name, OriginalSha256 = "unused", PdfSha256 = "unused", PageCount = 2, CreatedAt = DateTimeOffset.UtcNow,
        };
        var boardMinutes = Document(admin, "Board minutes.pdf");
        var priceList = Document(member, "Price list.pdf");
        await app.WithDbAsync(db => { db.Contents.AddRange(boardMinutes, priceList); return db.SaveChangesAsync(); });

        async Task<HttpClient> WebAsync(TestUser user)
        {
            var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
            Assert.Equal(HttpStatusCode.Redirect, (await SignInTests.PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password })).StatusCode);
            return client;
        }
        var web = await WebAsync(member);
        var page = await web.GetStringAsync("/compose");
        Assert.Contains($"<option value=\"{priceList.Id}\">Price list.pdf (2 pages)</option>", page);
        Assert.DoesNotContain(boardMinutes.Id.ToString(), page);
        Assert.DoesNotContain("Board minutes", page);

        var form = await FormAsync(web, new() { ["To"] = Address(), ["Subject"] = "Minutes", ["Html"] = "<p>Here:</p>", ["DocumentId"] = boardMinutes.Id.ToString() });
        var html = await (await web.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form))).Content.ReadAsStringAsync();
        Assert.Contains("No such document.", Errors(html, "document"));
        Assert.Equal("<p>Here:</p>", Value(html, "Html"));
        Assert.Equal(0, app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == boardMinutes.Id)));

        // A team admin is offered the team's, a member's too, and links them.
        var adminWeb = await WebAsync(admin);
        page = await adminWeb.GetStringAsync("/compose");
        Assert.Contains($"<option value=\"{priceList.Id}\">Price list.pdf (2 pages)</option>", page);
        Assert.Contains($"<option value=\"{boardMinutes.Id}\">Board minutes.pdf (2 pages)</option>", page);
        form = await FormAsync(adminWeb, new() { ["To"] = Address(), ["Subject"] = "Prices", ["Html"] = "<p>Here:</p>", ["DocumentId"] = priceList.Id.ToString() });
        html = await (await adminWeb.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form))).Content.ReadAsStringAsync();
        Assert.Contains("A tracked link to Price list.pdf is at the end of the message.", WebUtility.HtmlDecode(html));
        Assert.Equal(1, app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == priceList.Id)));
    }

    [Fact]
    public async Task A_documents_tracked_link_is_inserted_with_the_draft_kept_and_each_recipient_gets_a_link_of_their_own()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        ContentItem Document(Guid teamId, Guid userId, string name) => new()
        {
            TeamId = teamId, UserId = userId, Name = name, OriginalSha256 = "unused", PdfSha256 = "unused", PageCount = 3, CreatedAt = DateTimeOffset.UtcNow,
        };
        var proposal = Document(user.TeamId, user.Id, "Grid proposal.pdf");
        var stranger = await app.NewUserAsync();
        var theirs = Document(stranger.TeamId, stranger.Id, "Their plans.pdf");
        await app.WithDbAsync(db => { db.Contents.AddRange(proposal, theirs); return db.SaveChangesAsync(); });
        var page = await web.GetStringAsync("/compose");
        Assert.Contains($"<option value=\"{proposal.Id}\">Grid proposal.pdf (3 pages)</option>", page);
        Assert.DoesNotContain(theirs.Id.ToString(), page);

        var (alan, lora) = (Address(), Address());
        var form = await FormAsync(web, new()
        {
            ["MailboxId"] = mailbox.ToString(), ["To"] = $"{alan}, {lora}", ["Subject"] = "The proposal", ["Html"] = "<p>See the <b>proposal</b>:</p>",
            ["DocumentId"] = theirs.Id.ToString(),
        });
        var html = await (await web.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form))).Content.ReadAsStringAsync();
        Assert.Contains("No such document.", Errors(html, "document"));
        Assert.Equal("<p>See the <b>proposal</b>:</p>", Value(html, "Html"));

        form["DocumentId"] = proposal.Id.ToString();
        var res = await web.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        html = await res.Content.ReadAsStringAsync();
        Assert.Contains("A tracked link to Grid proposal.pdf is at the end of the message.", WebUtility.HtmlDecode(html));
        var body = Value(html, "Html");
        var share = Regex.Match(body, "^<p>See the <b>proposal</b>:</p><p><a href=\"([^\"]+)\">Grid proposal.pdf \\(3 pages\\)</a></p>$");
        Assert.True(share.Success, body);
        Assert.Equal($"{alan}, {lora}", Value(html, "To"));
        Assert.Contains($"name=\"Key\" value=\"{form["Key"]}\"", html);
        Assert.Equal(0, Messages(user.Id));

        // Sent: each copy has a link of its own to the document, not the share link.
        form["Html"] = body;
        res = await PostAsync(web, form);
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var messageId = Guid.Parse(form["Key"]);
        var links = app.WithDb(db => db.ContentLinks.Where(l => l.TrackedMessageId == messageId).Select(l => new { l.Token, l.CopyId, l.ContentId }).ToList());
        Assert.Equal(2, links.Count);
        Assert.Equal(2, links.Select(l => l.CopyId).Distinct().Count());
        Assert.All(links, l => Assert.Equal(proposal.Id, l.ContentId));
        var sent = app.Transport.Sent.Where(m => m.Subject == "The proposal" && m.To.Mailboxes.Any(a => a.Address == alan)).Select(m => m.HtmlBody ?? "").ToList();
        Assert.Equal(2, sent.Count);
        Assert.All(sent, b => Assert.DoesNotContain(share.Groups[1].Value, b));
        Assert.All(links, l => Assert.Single(sent, b => b.Contains(l.Token)));

        // On the Solo plan the page says why there are none, and inserting is refused.
        var (_, solo) = await SignedInAsync(Plan.Solo);
        Assert.Contains("Tracked documents come with the Team plan", await solo.GetStringAsync("/compose"));
        html = await (await solo.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(await FormAsync(solo, new()
        {
            ["To"] = alan, ["Text"] = "Hi", ["DocumentId"] = proposal.Id.ToString(),
        })))).Content.ReadAsStringAsync();
        Assert.Contains("Tracked documents come with the Team plan", Errors(html, "document"));
        Assert.Contains(">Hi</textarea>", html);
    }

    [Fact]
    public async Task A_plain_text_body_keeps_its_lines_and_its_web_addresses_become_tracked_links()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var to = Address();
        var res = await PostAsync(web, await FormAsync(web, new()
        {
            ["MailboxId"] = mailbox.ToString(), ["To"] = to, ["Subject"] = "Plain",
            ["Text"] = "Hi <Alan> & co,\r\nsee https://encom.test/grid?a=1&b=2.\r\n\r\nFlynn",
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var body = Assert.Single(app.Transport.To(to)).HtmlBody;
        Assert.Matches("^<p>Hi &lt;Alan&gt; &amp; co,<br>see <a href=\"http[^\"]+/c/[^\"]+\">https://encom.test/grid\\?a=1&amp;b=2</a>\\.</p><p>Flynn</p>", body);
    }

    /// <summary>The form posted with files (and repeated fields: kept ids, ticked removals), as a browser without script posts it.</summary>
    static Task<HttpResponseMessage> PostFilesAsync(HttpClient web, Dictionary<string, string> form, IEnumerable<(string Name, byte[] Content)> files,
        IEnumerable<(string Field, string Value)>? more = null, string handler = "")
    {
        var content = new MultipartFormDataContent();
        foreach (var (k, v) in form) content.Add(new StringContent(v), k);
        foreach (var (k, v) in more ?? []) content.Add(new StringContent(v), k);
        foreach (var (name, bytes) in files) content.Add(new ByteArrayContent(bytes), "Files", name);
        return web.PostAsync("/compose" + handler, content);
    }

    static List<Guid> KeptIds(string html) =>
        [.. Regex.Matches(html, "name=\"Kept\" value=\"([^\"]+)\"").Select(m => Guid.Parse(m.Groups[1].Value))];

    static IEnumerable<(string, string)> Keep(IEnumerable<Guid> ids) => ids.Select(id => ("Kept", id.ToString()));

    int Staged(Guid userId) => app.WithDb(db => db.StagedAttachments.Count(s => s.UserId == userId));

    [Fact]
    public async Task Files_chosen_with_a_form_that_comes_back_are_kept_and_go_with_the_corrected_one()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var to = Address();
        var pdf = Mailboxes.TestFiles.Pdf(20 * 1024, seed: 3);
        var notes = "Bring the grid plans."u8.ToArray();
        var form = await FormAsync(web, new()
        {
            ["MailboxId"] = mailbox.ToString(), ["To"] = "not-an-address", ["Subject"] = "Files", ["Html"] = "<p>Two files.</p>",
        });
        var res = await PostFilesAsync(web, form, [("Angebot.pdf", pdf), ("notes.txt", notes)]);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = await res.Content.ReadAsStringAsync();
        Assert.Contains("'not-an-address' is not an email address.", Errors(html, "to"));
        // Kept, named with their sizes, each removable; nothing asked for again.
        Assert.Matches("Kept: <span class=\"attachment-name\">Angebot.pdf</span>\\s*<span class=\"muted small\">\\(20 KB\\)</span>", html);
        Assert.Matches("Kept: <span class=\"attachment-name\">notes.txt</span>\\s*<span class=\"muted small\">\\(21 bytes\\)</span>", html);
        Assert.DoesNotContain("attach-again", html);
        var kept = KeptIds(html);
        Assert.Equal(2, kept.Count);
        Assert.Equal(2, Staged(user.Id));

        // Corrected, with one more file: all three go, in order, and the kept ones are gone from the server.
        form["To"] = to;
        res = await PostFilesAsync(web, form, [("extra.txt", "x"u8.ToArray())], Keep(kept));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var sent = Assert.Single(app.Transport.To(to));
        var files = sent.Attachments.OfType<MimeKit.MimePart>().ToList();
        Assert.Equal(["Angebot.pdf", "notes.txt", "extra.txt"], files.Select(f => f.FileName));
        using var bytes = new MemoryStream();
        await files[0].Content!.DecodeToAsync(bytes);
        Assert.Equal(pdf, bytes.ToArray());
        Assert.Equal(0, Staged(user.Id));

        // "Insert link" keeps them too.
        form["To"] = "not-an-address";
        form["Key"] = Guid.NewGuid().ToString();
        html = await (await PostFilesAsync(web, form, [("notes.txt", notes)], handler: "?handler=Document")).Content.ReadAsStringAsync();
        Assert.Single(KeptIds(html));
    }

    [Fact]
    public async Task Kept_files_are_the_users_own_can_be_removed_and_expire_after_an_hour()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var form = await FormAsync(web, new() { ["MailboxId"] = mailbox.ToString(), ["To"] = "not-an-address", ["Html"] = "<p>Hi</p>" });
        var html = await (await PostFilesAsync(web, form, [("a.txt", "first"u8.ToArray()), ("b.txt", "second"u8.ToArray())])).Content.ReadAsStringAsync();
        var kept = KeptIds(html);
        Assert.Equal(2, kept.Count);

        // Another user naming them: unknown, nothing sent, and they stay the owner's.
        var (other, theirWeb) = await SignedInAsync();
        var theirMailbox = await app.MailboxAsync(other);
        var to = Address();
        var theirs = await FormAsync(theirWeb, new() { ["MailboxId"] = theirMailbox.ToString(), ["To"] = to, ["Html"] = "<p>Hi</p>" });
        var res = await PostFilesAsync(theirWeb, theirs, [], Keep(kept));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        html = await res.Content.ReadAsStringAsync();
        Assert.Contains("2 files kept with this form are no longer kept (files are kept for an hour): attach them again.", Errors(html, "attachments"));
        Assert.Empty(KeptIds(html));
        Assert.Equal(0, Messages(other.Id));
        Assert.Empty(app.Transport.To(to));
        Assert.Equal(2, Staged(user.Id));

        // Ticked "remove" (no script): that one goes.
        html = await (await PostFilesAsync(web, form, [], [.. Keep(kept), ("RemoveKept", kept[0].ToString())])).Content.ReadAsStringAsync();
        Assert.Equal([kept[1]], KeptIds(html));
        Assert.Equal(1, Staged(user.Id));

        // Kept again renews the hour (100 minutes after it was chosen, it is still there); past it, the file is
        // unknown, nothing is sent, and it is deleted.
        app.Clock.Advance(TimeSpan.FromMinutes(50));
        html = await (await PostFilesAsync(web, form, [], Keep([kept[1]]))).Content.ReadAsStringAsync();
        Assert.Equal([kept[1]], KeptIds(html));
        app.Clock.Advance(TimeSpan.FromMinutes(50));
        html = await (await PostFilesAsync(web, form, [], Keep([kept[1]]))).Content.ReadAsStringAsync();
        Assert.Equal([kept[1]], KeptIds(html));
        app.Clock.Advance(TimeSpan.FromMinutes(61));
        form["To"] = to;
        res = await PostFilesAsync(web, form, [], Keep([kept[1]]));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        html = await res.Content.ReadAsStringAsync();
        Assert.Contains("A file kept with this form is no longer kept (files are kept for an hour): attach it again.", Errors(html, "attachments"));
        Assert.Equal(0, Messages(user.Id));
        Assert.Equal(0, Staged(user.Id));
    }

    [Fact]
    public async Task Kept_files_count_toward_the_size_the_number_and_the_program_rules_of_the_files_chosen_with_them()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var to = Address();
        var form = await FormAsync(web, new() { ["MailboxId"] = mailbox.ToString(), ["To"] = "not-an-address", ["Html"] = "<p>Hi</p>" });
        var big = Mailboxes.TestFiles.Pdf(700 * 1024, seed: 4);
        var kept = KeptIds(await (await PostFilesAsync(web, form, [("big.pdf", big)])).Content.ReadAsStringAsync());
        Assert.Single(kept);

        // Over the limit (1 MB here) with the kept file: the new file is named, not kept, and the kept one stays.
        form["To"] = to;
        var res = await PostFilesAsync(web, form, [("more.pdf", Mailboxes.TestFiles.Pdf(400 * 1024, seed: 5))], Keep(kept));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = await res.Content.ReadAsStringAsync();
        Assert.Contains("more.pdf takes the attachments past 1 MB in all (1.1 MB with it)", Errors(html, "attachments"));
        Assert.Equal(kept, KeptIds(html));
        Assert.Contains("more.pdf (400 KB) was not kept", WebUtility.HtmlDecode(html));
        Assert.Equal(1, Staged(user.Id));

        // A program among the new files: refused and not kept; the file that may go is kept with the first.
        html = await (await PostFilesAsync(web, form, [("run.exe", "MZ\u0090\u0000"u8.ToArray()), ("ok.txt", "fine"u8.ToArray())], Keep(kept))).Content.ReadAsStringAsync();
        Assert.Contains("run.exe is refused: .exe files are programs or scripts.", Errors(html, "attachments"));
        var both = KeptIds(html);
        Assert.Equal(2, both.Count);
        Assert.Equal(kept[0], both[0]);
        Assert.Contains("run.exe (5 bytes) was not kept", WebUtility.HtmlDecode(html));
        Assert.DoesNotContain(">run.exe</span>", html);

        // More than 100 files with the kept ones.
        var many = Enumerable.Range(1, 99).Select(i => ($"n{i}.txt", "n"u8.ToArray())).ToList();
        html = await (await PostFilesAsync(web, form, many, Keep(both))).Content.ReadAsStringAsync();
        Assert.Contains("At most 100 attachments (101 with those kept)", Errors(html, "attachments"));
        Assert.Equal(both, KeptIds(html));
        Assert.Equal(0, Messages(user.Id));
        Assert.Empty(app.Transport.To(to));
    }

    [Fact]
    public async Task A_documents_link_goes_where_the_editors_caret_was_replacing_the_selection()
    {
        var (user, web) = await SignedInAsync();
        var proposal = new ContentItem
        {
            TeamId = user.TeamId, UserId = user.Id, Name = "Grid proposal.pdf", OriginalSha256 = "unused", PdfSha256 = "unused", PageCount = 3, CreatedAt = DateTimeOffset.UtcNow,
        };
        await app.WithDbAsync(db => { db.Contents.Add(proposal); return db.SaveChangesAsync(); });
        var form = await FormAsync(web, new()
        {
            ["To"] = Address(), ["DocumentId"] = proposal.Id.ToString(),
            ["Html"] = "<p>See <span data-insert-link=\"\"><b>this</b></span> before Friday.</p><p>Flynn</p>",
        });
        var html = await (await web.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form))).Content.ReadAsStringAsync();
        Assert.Matches("^<p>See <a href=\"[^\"]+/d/[^\"]+\">Grid proposal.pdf \\(3 pages\\)</a> before Friday.</p><p>Flynn</p>$", Value(html, "Html"));
        Assert.Contains("A tracked link to Grid proposal.pdf is in the message, where the cursor was.", WebUtility.HtmlDecode(html));

        // The caret inside a link: the new link goes after it, not inside.
        form["Html"] = "<p><a href=\"https://encom.test/\">enc<span data-insert-link=\"\"></span>om</a> and</p>";
        html = await (await web.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form))).Content.ReadAsStringAsync();
        Assert.Matches("^<p><a href=\"https://encom.test/\">encom</a><a href=\"[^\"]+\">Grid proposal.pdf \\(3 pages\\)</a> and</p>$", Value(html, "Html"));

        // No marker (the editor never had the caret): at the end, as before.
        form["Html"] = "<p>Hi</p>";
        html = await (await web.PostAsync("/compose?handler=Document", new FormUrlEncodedContent(form))).Content.ReadAsStringAsync();
        Assert.Matches("^<p>Hi</p><p><a href=\"[^\"]+\">Grid proposal.pdf \\(3 pages\\)</a></p>$", Value(html, "Html"));
    }

    /// <summary>
    /// A post naming a handler the page does not have ran the page's default handler (Razor Pages takes the handler
    /// without a name for any name it does not know): "?handler=Preview" sent the message. Now it is answered 404 and
    /// nothing runs; the same form posted to the page itself sends.
    /// </summary>
    [Fact]
    public async Task A_post_naming_a_handler_the_page_does_not_have_runs_none_and_sends_nothing()
    {
        var (user, web) = await SignedInAsync();
        var mailbox = await app.MailboxAsync(user);
        var to = Address();
        var form = await FormAsync(web, new() { ["MailboxId"] = mailbox.ToString(), ["To"] = to, ["Subject"] = "Preview", ["Text"] = "Hello" });
        foreach (var handler in new[] { "Preview", "Send", "OnPost", "Document%20" })
        {
            var res = await web.PostAsync($"/compose?handler={handler}", new FormUrlEncodedContent(form));
            Assert.True(res.StatusCode == HttpStatusCode.NotFound, $"{handler}: {(int)res.StatusCode}");
        }
        Assert.Empty(app.Transport.To(to));
        Assert.Equal(0, Messages(user.Id));

        // The handlers the page has still answer, whatever the case of their name; the default one sends.
        var inserted = await web.PostAsync("/compose?handler=document", new FormUrlEncodedContent(form));
        Assert.Equal(HttpStatusCode.OK, inserted.StatusCode);
        var sent = await web.PostAsync("/compose", new FormUrlEncodedContent(form));
        Assert.Equal(HttpStatusCode.Redirect, sent.StatusCode);
        Assert.Single(app.Transport.To(to));
    }

    [Fact]
    public void Addresses_are_split_at_commas_semicolons_and_lines_but_not_inside_a_quoted_name()
    {
        Assert.Equal(["a@x.test", "\"Bradley, Alan\" <alan@x.test>", "b@x.test", "c@x.test"],
            ComposeModel.Entries("a@x.test, \"Bradley, Alan\" <alan@x.test>;b@x.test\n c@x.test,,"));
        Assert.Empty(ComposeModel.Entries("  ,; "));
    }
}

/// <summary>The server with IMAP mailboxes sending through <see cref="RecordingTransport"/> and watching nothing.</summary>
public abstract class ComposePageApp(DatabaseProvider provider) : AppFactory(provider)
{
    public RecordingTransport Transport { get; } = new();
    /// <summary>The clock kept files expire by.</summary>
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override void Configure(IWebHostBuilder builder)
    {
        // Small enough that the limit is crossed with small files.
        builder.UseSetting("Mailboxes:MaxAttachmentBytes", (1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.ConfigureServices(s =>
        {
            s.AddKeyedScoped<IMailTransport>(MailboxKind.Imap, (_, _) => Transport);
            s.AddKeyedScoped<IMailboxWatch, NoWatch>(MailboxKind.Imap);
            s.AddKeyedSingleton<TimeProvider>(StagedAttachments.ClockKey, Clock);
        });
    }

    /// <summary>An active IMAP mailbox of the user's (its credentials are never used: the transport records).</summary>
    public async Task<Guid> MailboxAsync(TestUser user, string? address = null)
    {
        address ??= user.Email;
        var id = Guid.NewGuid();
        await WithDbAsync(async db =>
        {
            if (!await db.UserAddresses.AnyAsync(a => a.Address == address)) db.UserAddresses.Add(new UserAddress { UserId = user.Id, Address = address });
            db.Mailboxes.Add(new MailboxConnection
            {
                Id = id, TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = address, Status = MailboxStatus.Active,
                ProtectedSecret = "unused", CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        return id;
    }
}

public sealed class ComposePageSqliteApp() : ComposePageApp(DatabaseProvider.Sqlite);

public sealed class ComposePagePostgresApp() : ComposePageApp(DatabaseProvider.Postgres);

public sealed class ComposePageOnSqlite(ComposePageSqliteApp app) : ComposePageTests(app), IClassFixture<ComposePageSqliteApp>;

public sealed class ComposePageOnPostgres(ComposePagePostgresApp app) : ComposePageTests(app), IClassFixture<ComposePagePostgresApp>;
