using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// Copies a send could not send (the mail server refused one recipient): the copy keeps why and when, and the message's
/// detail, its page and the message list show those recipients as not sent, not as not having opened.
/// </summary>
public abstract class UnsentCopiesTests(ComposePageApp app)
{
    const string Password = "Correct-horse-battery-9";

    static string Address() => $"r{Guid.NewGuid():N}"[..12] + "@encom.test";

    async Task<(TestUser User, HttpClient Web)> SenderAsync(string? team = null)
    {
        var user = await app.NewUserAsync(team, password: Password);
        await app.MailboxAsync(user);
        var web = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var res = await SignInTests.PostLoginAsync(web, new() { ["Email"] = user.Email, ["Password"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return (user, web);
    }

    /// <summary>A send through the user's mailbox to these recipients, answered 201.</summary>
    static async Task<JsonElement> SendAsync(TestUser user, string subject, params string[] to)
    {
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject, to, html = "<p>Hi, see <a href=\"https://encom.test/deck\">the deck</a>.</p>", text = "Hi, see the deck.",
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    static JsonElement Recipient(JsonElement detail, string address) =>
        detail.GetProperty("message").GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == address);

    [Fact]
    public async Task A_copy_the_server_refused_is_recorded_and_shown_as_not_sent_in_the_detail_the_page_and_the_list()
    {
        var (user, web) = await SenderAsync();
        var (good, refused) = (Address(), Address());
        app.Transport.Refuse[refused] = true;
        var before = DateTimeOffset.UtcNow;
        var sent = await SendAsync(user, "One refused", good, refused);
        var id = sent.GetProperty("id").GetGuid();

        // Kept on the copy, why and when; the copy that left has neither.
        var copies = app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id).AsNoTracking()
            .Join(db.Recipients, c => c.Id, r => r.CopyId, (c, r) => new { r.Address, c.NotSentReason, c.NotSentAt }).ToList());
        var failed = copies.Single(c => c.Address == refused);
        Assert.Equal("550 5.1.1 User unknown", failed.NotSentReason);
        Assert.True(failed.NotSentAt >= before.AddSeconds(-1), $"{failed.NotSentAt}");
        var left = copies.Single(c => c.Address == good);
        Assert.Null(left.NotSentReason);
        Assert.Null(left.NotSentAt);

        // The API's detail says it per recipient.
        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        var notSent = Recipient(detail, refused).GetProperty("notSent");
        Assert.Equal("550 5.1.1 User unknown", notSent.GetProperty("reason").GetString());
        Assert.True(notSent.GetProperty("at").GetDateTimeOffset() >= before.AddSeconds(-1));
        Assert.Equal(JsonValueKind.Null, Recipient(detail, good).GetProperty("notSent").ValueKind);
        Assert.Equal(1, detail.GetProperty("message").GetProperty("notSentCount").GetInt32());

        // The message's page shows it on that recipient, as a problem; the other is an ordinary recipient.
        var page = await web.GetStringAsync($"/messages/{id}");
        var rows = Regex.Matches(page, "<tr data-recipient-id=.*?</tr>", RegexOptions.Singleline).Select(m => m.Value).ToList();
        var refusedRow = rows.Single(r => r.Contains(refused));
        // The server's words shown exactly, apart from the page's own (Display.Exact).
        Assert.Contains("<div class=\"not-sent\" role=\"note\">Not sent: <bdi class=\"exact\">550 5.1.1 User unknown", refusedRow);
        Assert.DoesNotContain("not-sent", rows.Single(r => r.Contains(good)));

        // The list: "1 not sent" on the message, and "not sent" rather than "not opened yet" on that recipient.
        var list = await web.GetStringAsync("/");
        var message = Regex.Match(list, $"<tbody class=\"message\" data-message-id=\"{id}\".*?</tbody>", RegexOptions.Singleline).Value;
        Assert.Contains(">1 not sent</span>", message);
        var listRows = Regex.Matches(message, "<tr .*?</tr>", RegexOptions.Singleline).Select(m => m.Value).ToList();
        Assert.Contains("not sent</span>", listRows.Single(r => r.Contains(refused)));
        Assert.Contains("not opened yet", listRows.Single(r => r.Contains(good)));
    }

    /// <summary>A send with a file to a good address and to these refused ones; answers the message and the failed copies' Message-IDs.</summary>
    internal static async Task<(Guid Id, string Good, List<string> Refused, List<string> FailedIds)> PartlyFailedAsync(ComposePageApp app, TestUser user, int refusedCount = 2)
    {
        var good = Address();
        var refused = Enumerable.Range(0, refusedCount).Select(_ => Address()).ToList();
        foreach (var r in refused) app.Transport.Refuse[r] = true;
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject = "Partly refused", to = new[] { good }, cc = refused,
            html = "<p>Hi, see <a href=\"https://encom.test/deck\">the deck</a>.</p>", text = "Hi, see the deck (plain).",
            attachments = new[] { new { fileName = "notes.txt", content = Convert.ToBase64String("the notes"u8.ToArray()) } },
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        var sent = JsonDocument.Parse(text).RootElement;
        var failed = sent.GetProperty("copies").EnumerateArray().Where(c => !c.GetProperty("sent").GetBoolean())
            .Select(c => c.GetProperty("messageId").GetString()!.Trim('<', '>')).ToList();
        Assert.Equal(refusedCount, failed.Count);
        foreach (var r in refused) app.Transport.Refuse.TryRemove(r, out _);
        return (sent.GetProperty("id").GetGuid(), good, refused, failed);
    }

    internal static Task<HttpResponseMessage> ResendAsync(TestUser user, Guid id) => user.Client.PostAsync($"/api/messages/{id}/resend", null);

    internal static int SentWith(ComposePageApp app, IEnumerable<string> messageIds) => app.Transport.Sent.Count(m => messageIds.Contains(m.MessageId ?? ""));

    internal static async Task<JsonElement> ProblemAsync(HttpResponseMessage res, HttpStatusCode status)
    {
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(status == res.StatusCode, $"expected {(int)status}, got {(int)res.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task A_nul_in_the_body_of_a_send_is_dropped_so_that_a_failed_copys_content_is_kept_never_a_500()
    {
        // The body of a copy that did not go is kept to send again: PostgreSQL text cannot hold U+0000, and the send
        // answered 500 after the other copies had left.
        var (user, _) = await SenderAsync();
        var (good, refused) = (Address(), Address());
        app.Transport.Refuse[refused] = true;
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject = "NUL", to = new[] { good, refused }, html = "<p>Hi\u0000 there</p>", text = "Hi\u0000 there",
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        var id = JsonDocument.Parse(text).RootElement.GetProperty("id").GetGuid();
        var kept = app.WithDb(db => db.UnsentContents.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Equal("<p>Hi there</p>", kept.Html);
        Assert.Equal("Hi there", kept.Text);
    }

    [Fact]
    public async Task Resend_sends_only_the_failed_copies_with_their_message_ids_and_files_records_them_sent_and_forgets_the_content()
    {
        var (user, _) = await SenderAsync();
        var (id, good, refused, failedIds) = await PartlyFailedAsync(app, user);
        // What sending them again needs is kept, files and all, while they are not sent.
        var kept = app.WithDb(db => db.UnsentContents.Include(c => c.Attachments).AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Equal("Hi, see the deck (plain).", kept.Text);
        Assert.Equal("notes.txt", Assert.Single(kept.Attachments).FileName);
        Assert.Equal(0, SentWith(app, failedIds));

        var res = await ResendAsync(user, id);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var copies = JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray().ToList();
        Assert.Equal(failedIds.Order(), copies.Select(c => c.GetProperty("messageId").GetString()!.Trim('<', '>')).Order());
        Assert.All(copies, c => Assert.True(c.GetProperty("sent").GetBoolean()));

        // Exactly the failed copies left, once each, with their own Message-IDs, pixels and files; the good one not again.
        Assert.Equal(2, SentWith(app, failedIds));
        Assert.Single(app.Transport.To(good), m => !failedIds.Contains(m.MessageId ?? ""));
        var pixels = app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id).Select(c => new { c.MessageIdHeader, c.PixelToken }).ToList());
        foreach (var mail in app.Transport.Sent.Where(m => failedIds.Contains(m.MessageId ?? "")))
        {
            Assert.Contains($"/o/{pixels.Single(p => p.MessageIdHeader == mail.MessageId).PixelToken}.gif", mail.HtmlBody);
            Assert.Equal("Hi, see the deck (plain).", mail.TextBody?.Trim());
            var file = Assert.Single(mail.Attachments.OfType<MimeKit.MimePart>());
            Assert.Equal("notes.txt", file.FileName);
            using var bytes = new MemoryStream();
            file.Content!.DecodeTo(bytes);
            Assert.Equal("the notes", System.Text.Encoding.UTF8.GetString(bytes.ToArray()));
            Assert.DoesNotContain("https://encom.test/deck", mail.HtmlBody ?? "");
        }

        // Recorded as sent; the content is gone; nothing is shown as not sent.
        Assert.True(app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id).All(c => c.NotSentReason == null && c.NotSentAt == null && c.ResendClaim == null)));
        Assert.False(app.WithDb(db => db.UnsentContents.Any(c => c.TrackedMessageId == id) || db.UnsentAttachments.Any(a => a.TrackedMessageId == id)));
        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        Assert.Equal(0, detail.GetProperty("message").GetProperty("notSentCount").GetInt32());
        Assert.Single(app.Transport.To(good), m => !failedIds.Contains(m.MessageId ?? ""));

        // Again: nothing failed, nothing is sent.
        var again = await ProblemAsync(await ResendAsync(user, id), HttpStatusCode.Conflict);
        Assert.Contains("nothing to send again", again.GetProperty("detail").GetString());
        Assert.Equal(2, SentWith(app, failedIds));
    }

    [Fact]
    public async Task A_copy_refused_again_keeps_its_reason_and_content_and_the_answer_says_so()
    {
        var (user, _) = await SenderAsync();
        var (id, _, refused, failedIds) = await PartlyFailedAsync(app, user);
        app.Transport.Refuse[refused[1]] = true;
        var res = await ResendAsync(user, id);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var answer = JsonDocument.Parse(text).RootElement;
        Assert.Equal([true, false], answer.GetProperty("copies").EnumerateArray()
            .OrderBy(c => c.GetProperty("recipients")[0].GetString() == refused[1]).Select(c => c.GetProperty("sent").GetBoolean()));
        Assert.Contains($"POST /api/messages/{id}/resend tries them again", answer.GetProperty("warning").GetString());
        Assert.True(app.WithDb(db => db.UnsentContents.Any(c => c.TrackedMessageId == id)));
        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        Assert.Equal(1, detail.GetProperty("message").GetProperty("notSentCount").GetInt32());
        Assert.Equal("550 5.1.1 User unknown", Recipient(detail, refused[1]).GetProperty("notSent").GetProperty("reason").GetString());
        app.Transport.Refuse.TryRemove(refused[1], out _);

        // Sent the second time; the first copy is not sent twice.
        Assert.Equal(HttpStatusCode.OK, (await ResendAsync(user, id)).StatusCode);
        Assert.Equal(2, SentWith(app, failedIds));
    }

    [Fact]
    public async Task Expired_content_answers_410_with_how_long_it_is_kept_and_sends_nothing()
    {
        var (user, _) = await SenderAsync();
        var (id, _, _, failedIds) = await PartlyFailedAsync(app, user);
        await app.WithDbAsync(db => db.UnsentContents.Where(c => c.TrackedMessageId == id)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.KeptUntil, DateTimeOffset.UtcNow.AddMinutes(-1))));
        var problem = await ProblemAsync(await ResendAsync(user, id), HttpStatusCode.Gone);
        Assert.Equal("The message's content is no longer kept.", problem.GetProperty("title").GetString());
        Assert.Contains("kept for 7 days after the send (Mailboxes:KeepUnsentFor)", problem.GetProperty("detail").GetString());
        Assert.Equal(0, SentWith(app, failedIds));
        // Gone at once, files too; the copies are still shown as not sent.
        Assert.False(app.WithDb(db => db.UnsentContents.Any(c => c.TrackedMessageId == id) || db.UnsentAttachments.Any(a => a.TrackedMessageId == id)));
        Assert.Equal(2, (await user.Client.GetJsonAsync($"/api/messages/{id}")).GetProperty("message").GetProperty("notSentCount").GetInt32());
    }

    [Fact]
    public async Task A_resend_while_another_is_sending_sends_nothing_twice()
    {
        var (user, _) = await SenderAsync();
        var (id, _, refused, failedIds) = await PartlyFailedAsync(app, user);
        // While the first resend is at the transport, a second one comes: the copies are claimed, it sends nothing.
        HttpResponseMessage? second = null;
        app.Transport.WhileSending[refused[0]] = async () => second = await ResendAsync(user, id);
        Assert.Equal(HttpStatusCode.OK, (await ResendAsync(user, id)).StatusCode);
        var problem = await ProblemAsync(second!, HttpStatusCode.Conflict);
        Assert.Equal("These copies are being sent again already.", problem.GetProperty("title").GetString());
        Assert.Equal(2, SentWith(app, failedIds));
        Assert.Equal(2, failedIds.Distinct().Count(i => app.Transport.Sent.Count(m => m.MessageId == i) == 1));

        // Two at the same moment: each copy leaves once.
        var (id2, _, _, failedIds2) = await PartlyFailedAsync(app, user);
        var both = await Task.WhenAll(ResendAsync(user, id2), ResendAsync(user, id2));
        Assert.Contains(both, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(both, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict, r.StatusCode.ToString()));
        Assert.Equal(2, SentWith(app, failedIds2));
    }

    [Fact]
    public async Task A_resend_whose_process_died_holds_its_copies_for_a_while_then_the_next_finds_those_that_left_in_Sent()
    {
        var (user, _) = await SenderAsync();
        var (id, _, _, failedIds) = await PartlyFailedAsync(app, user);
        var mailbox = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id).Address);
        // A resend claimed both copies and died: the first had left (it is in Sent), the second had not.
        app.Transport.SentFolder[$"{mailbox} {failedIds[0]}"] = true;
        var hold = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<EmailTracking.Server.Mailboxes.MailboxOptions>>().Value.ResendClaimHold;
        void Claim(DateTimeOffset at) => app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id && c.NotSentReason != null)
            .ExecuteUpdate(u => u.SetProperty(c => c.ResendClaim, Guid.NewGuid()).SetProperty(c => c.ResendClaimedAt, at)));

        // Within the hold the claim stands: the dead request may still be sending, for all another one knows.
        Claim(DateTimeOffset.UtcNow - hold + TimeSpan.FromMinutes(1));
        var held = await ProblemAsync(await ResendAsync(user, id), HttpStatusCode.Conflict);
        Assert.Equal("These copies are being sent again already.", held.GetProperty("title").GetString());
        Assert.Equal(0, SentWith(app, failedIds));

        // After it, the copies are taken over, and the one that left is found in Sent rather than sent twice.
        Claim(DateTimeOffset.UtcNow - hold - TimeSpan.FromMinutes(1));
        var res = await ResendAsync(user, id);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var answer = JsonDocument.Parse(text).RootElement;
        var copies = answer.GetProperty("copies").EnumerateArray().ToDictionary(c => c.GetProperty("messageId").GetString()!.Trim('<', '>'));
        Assert.True(copies[failedIds[0]].GetProperty("foundInSent").GetBoolean());
        Assert.False(copies[failedIds[1]].GetProperty("foundInSent").GetBoolean());
        Assert.All(copies.Values, c => Assert.True(c.GetProperty("sent").GetBoolean()));
        Assert.Contains("1 copy that may have left was found in the Sent folder: recorded as sent, not sent again.", answer.GetProperty("warning").GetString());
        Assert.Equal(0, SentWith(app, [failedIds[0]]));
        Assert.Equal(1, SentWith(app, [failedIds[1]]));
        Assert.True(app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id).All(c => c.NotSentReason == null && c.ResendClaim == null)));
    }

    [Fact]
    public async Task A_resend_that_fails_after_handing_copies_over_keeps_its_claim_so_the_next_looks_in_Sent_first()
    {
        var (user, _) = await SenderAsync();
        var (id, _, refused, failedIds) = await PartlyFailedAsync(app, user);
        // The copies leave, then the request fails before it records so (the exception stands for a lost database).
        app.Transport.CrashAfterSend[refused[0]] = true;
        var failed = await ResendAsync(user, id);
        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        Assert.Equal(2, SentWith(app, failedIds));
        Assert.Equal(2, app.WithDb(db => db.Copies.Count(c => c.TrackedMessageId == id && c.NotSentReason != null && c.ResendClaim != null)));

        // Not released: a resend at once would send them blindly a second time.
        await ProblemAsync(await ResendAsync(user, id), HttpStatusCode.Conflict);
        // Once the claim is stale, the next resend finds both in Sent and sends nothing.
        var hold = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<EmailTracking.Server.Mailboxes.MailboxOptions>>().Value.ResendClaimHold;
        app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id && c.ResendClaim != null)
            .ExecuteUpdate(u => u.SetProperty(c => c.ResendClaimedAt, DateTimeOffset.UtcNow - hold - TimeSpan.FromMinutes(1))));
        var res = await ResendAsync(user, id);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        Assert.All(JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray(), c => Assert.True(c.GetProperty("foundInSent").GetBoolean()));
        Assert.Equal(2, SentWith(app, failedIds));
        Assert.True(app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id).All(c => c.NotSentReason == null && c.ResendClaim == null)));
    }

    [Fact]
    public async Task Another_users_message_a_removed_mailbox_and_one_needing_reconnect_send_nothing_and_say_why()
    {
        var team = $"team-{Guid.NewGuid():N}";
        var (user, _) = await SenderAsync(team);
        var (id, _, _, failedIds) = await PartlyFailedAsync(app, user);

        // Another user, and the team's admin: the owner's only.
        var other = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await ResendAsync(other, id)).StatusCode);
        var admin = await app.NewUserAsync(team, role: TeamRole.Admin);
        Assert.Equal(user.TeamId, admin.TeamId);
        Assert.Equal(HttpStatusCode.NotFound, (await ResendAsync(admin, id)).StatusCode);

        var mailbox = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id));
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox.Id).ExecuteUpdateAsync(u => u
            .SetProperty(m => m.Status, MailboxStatus.NeedsReconnect).SetProperty(m => m.StatusMessage, "The server refused the login.")));
        var reconnect = await ProblemAsync(await ResendAsync(user, id), HttpStatusCode.Conflict);
        Assert.Equal("The mailbox needs to be reconnected.", reconnect.GetProperty("title").GetString());

        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox.Id).ExecuteDeleteAsync());
        var removed = await ProblemAsync(await ResendAsync(user, id), HttpStatusCode.BadRequest);
        Assert.Contains("has been removed", removed.GetProperty("errors").GetProperty("mailboxId")[0].GetString());

        Assert.Equal(0, SentWith(app, failedIds));
        Assert.True(app.WithDb(db => db.Copies.Count(c => c.TrackedMessageId == id && c.NotSentReason != null && c.ResendClaim == null)) == 2);
    }

    [Fact]
    public async Task Deleting_the_message_deletes_its_kept_content()
    {
        var (user, _) = await SenderAsync();
        var (id, _, _, _) = await PartlyFailedAsync(app, user);
        await app.WithDbAsync(db => db.Messages.Where(m => m.Id == id).ExecuteDeleteAsync());
        Assert.False(app.WithDb(db => db.UnsentContents.Any(c => c.TrackedMessageId == id) || db.UnsentAttachments.Any(a => a.TrackedMessageId == id)));
    }

    [Fact]
    public async Task The_message_page_offers_to_send_again_and_says_what_became_of_it()
    {
        var (user, web) = await SenderAsync();
        var (id, _, refused, failedIds) = await PartlyFailedAsync(app, user, refusedCount: 1);
        var page = await web.GetStringAsync($"/messages/{id}");
        Assert.Contains(">Send again to 1 recipient</button>", page);
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;

        // Without the antiforgery token: refused, nothing sent.
        var forged = await web.PostAsync($"/messages/{id}?handler=Resend", new FormUrlEncodedContent([]));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(0, SentWith(app, failedIds));

        var res = await web.PostAsync($"/messages/{id}?handler=Resend", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var after = await web.GetStringAsync(res.Headers.Location!.OriginalString);
        Assert.Contains("Sent again to 1 recipient.", after);
        Assert.DoesNotContain("Send again to", after);
        Assert.DoesNotContain("class=\"not-sent\"", after);
        Assert.Equal(1, SentWith(app, failedIds));

        // Again: the page says why nothing was sent, as a problem.
        res = await web.PostAsync($"/messages/{id}?handler=Resend", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        after = WebUtility.HtmlDecode(await web.GetStringAsync(res.Headers.Location!.OriginalString));
        Assert.Contains("<div class=\"notice problem\" role=\"status\" id=\"notice\">Every copy of this message was sent. No copy of this message failed to send", after);
        Assert.Equal(1, SentWith(app, failedIds));
        Assert.DoesNotContain(refused[0], app.Transport.Refuse.Keys);
    }

    [Fact]
    public async Task A_copy_lost_after_it_was_handed_over_is_shown_as_perhaps_sent()
    {
        var (user, web) = await SenderAsync();
        var lost = Address();
        app.Transport.LostAfterHandover[lost] = false;
        var id = (await SendAsync(user, "Lost on the way", lost)).GetProperty("id").GetGuid();
        var reason = Recipient(await user.Client.GetJsonAsync($"/api/messages/{id}"), lost).GetProperty("notSent").GetProperty("reason").GetString();
        Assert.StartsWith("It may have left all the same", reason);
        Assert.Contains("The connection to the SMTP server failed", reason);
        Assert.Contains("sending it again looks for it in the Sent folder first", WebUtility.HtmlDecode(await web.GetStringAsync($"/messages/{id}")));
    }

    [Fact]
    public async Task A_copy_that_may_have_left_and_did_is_found_in_Sent_on_resend_and_not_sent_twice()
    {
        var (user, web) = await SenderAsync();
        var lost = Address();
        // The relay took the mail, then the connection dropped: it left and is in Sent, but the send could not know.
        app.Transport.LostAfterHandover[lost] = true;
        var id = (await SendAsync(user, "Left after all", lost)).GetProperty("id").GetGuid();
        Assert.Single(app.Transport.To(lost));
        var messageId = app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == id).MessageIdHeader);

        var page = await web.GetStringAsync($"/messages/{id}");
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await web.PostAsync($"/messages/{id}?handler=Resend", new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var after = WebUtility.HtmlDecode(await web.GetStringAsync(res.Headers.Location!.OriginalString));
        Assert.Contains($"Found in the Sent folder, so it had left and was not sent again: {lost}.", after);
        Assert.DoesNotContain("Sent again to", after);
        Assert.DoesNotContain("class=\"not-sent\"", after);

        // Not handed over a second time; recorded as sent with the thread the mailbox kept; nothing kept to resend.
        Assert.Single(app.Transport.To(lost));
        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Null(copy.NotSentReason);
        Assert.Equal("thread-of-" + messageId, copy.ProviderThreadId);
        Assert.False(app.WithDb(db => db.UnsentContents.Any(c => c.TrackedMessageId == id)));
    }

    [Fact]
    public async Task A_copy_that_may_have_left_but_did_not_is_sent_on_resend_and_one_the_mailbox_cannot_tell_of_is_sent_with_a_warning()
    {
        var (user, _) = await SenderAsync();
        var lost = Address();
        app.Transport.LostAfterHandover[lost] = false;
        var id = (await SendAsync(user, "Never left", lost)).GetProperty("id").GetGuid();
        Assert.Empty(app.Transport.To(lost));
        var res = await ResendAsync(user, id);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var copy = Assert.Single(JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray());
        Assert.True(copy.GetProperty("sent").GetBoolean());
        Assert.False(copy.GetProperty("foundInSent").GetBoolean());
        Assert.Single(app.Transport.To(lost));

        var unsure = Address();
        app.Transport.LostAfterHandover[unsure] = false;
        id = (await SendAsync(user, "Cannot tell", unsure)).GetProperty("id").GetGuid();
        app.Transport.CanTell = false;
        try
        {
            res = await ResendAsync(user, id);
        }
        finally
        {
            app.Transport.CanTell = true;
        }
        text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var answer = JsonDocument.Parse(text).RootElement;
        Assert.True(Assert.Single(answer.GetProperty("copies").EnumerateArray()).GetProperty("sent").GetBoolean());
        Assert.Contains("The mailbox could not tell whether 1 copy that may have left did", answer.GetProperty("warning").GetString());
        Assert.Contains(EmailTracking.Tests.Sequences.RecordingTransport.CannotTell, answer.GetProperty("warning").GetString());
        Assert.Single(app.Transport.To(unsure));
    }

    [Fact]
    public async Task A_copy_that_did_leave_but_is_not_found_in_Sent_is_sent_again_and_the_first_mails_links_still_work()
    {
        // The connection was lost after the mail was handed over, and it did reach the recipient; the mailbox cannot
        // tell at the resend (as a Sent search that has not caught up yet cannot), so it goes again.
        var (user, _) = await SenderAsync();
        var to = Address();
        app.Transport.LostAfterHandover[to] = true;
        var id = (await SendAsync(user, "Arrived after all", to)).GetProperty("id").GetGuid();
        var first = Assert.Single(app.Transport.To(to));
        var firstClick = Regex.Match(first.HtmlBody ?? "", "href=\"(?<url>[^\"]*/c/[^\"]+)\"").Groups["url"].Value;
        Assert.NotEqual("", firstClick);
        app.Transport.CanTell = false;
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await ResendAsync(user, id)).StatusCode);
        }
        finally
        {
            app.Transport.CanTell = true;
        }
        Assert.Equal(2, app.Transport.To(to).Count);

        // The recipient clicks the link in the mail that arrived first: it still leads to the deck.
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var click = await browser.GetAsync(new Uri(firstClick).PathAndQuery);
        Assert.Equal(HttpStatusCode.Redirect, click.StatusCode);
        Assert.Equal("https://encom.test/deck", click.Headers.Location?.ToString());
    }

    [Fact]
    public async Task A_send_whose_copies_all_left_shows_nothing_not_sent()
    {
        var (user, web) = await SenderAsync();
        var to = Address();
        var id = (await SendAsync(user, "All left", to)).GetProperty("id").GetGuid();
        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        Assert.Equal(0, detail.GetProperty("message").GetProperty("notSentCount").GetInt32());
        Assert.DoesNotContain("not-sent", await web.GetStringAsync($"/messages/{id}"));
    }
}

public sealed class UnsentCopiesOnSqlite(ComposePageSqliteApp app) : UnsentCopiesTests(app), IClassFixture<ComposePageSqliteApp>;

public sealed class UnsentCopiesOnPostgres(ComposePagePostgresApp app) : UnsentCopiesTests(app), IClassFixture<ComposePagePostgresApp>;

/// <summary>The Compose server whose resends' claims hold 2 seconds without renewal (the default is 10 minutes).</summary>
public sealed class ShortResendClaimApp() : ComposePageApp(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("Mailboxes:ResendClaimHold", "00:00:02");
    }
}

/// <summary>A resend that takes longer than its claim's hold renews the claim, so no other request takes its copies over.</summary>
public sealed class ResendClaimRenewalTests(ShortResendClaimApp app) : IClassFixture<ShortResendClaimApp>
{
    [Fact]
    public async Task A_resend_slower_than_the_hold_keeps_its_claim_and_each_copy_leaves_once()
    {
        var user = await app.NewUserAsync();
        await app.MailboxAsync(user);
        var (id, _, refused, failedIds) = await UnsentCopiesTests.PartlyFailedAsync(app, user);
        // The first resend is at the transport for twice the hold; another comes then.
        HttpResponseMessage? second = null;
        app.Transport.WhileSending[refused[0]] = async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(4));
            second = await UnsentCopiesTests.ResendAsync(user, id);
        };
        var first = await UnsentCopiesTests.ResendAsync(user, id);
        Assert.True(first.StatusCode == HttpStatusCode.OK, await first.Content.ReadAsStringAsync());
        var problem = await UnsentCopiesTests.ProblemAsync(second!, HttpStatusCode.Conflict);
        Assert.Equal("These copies are being sent again already.", problem.GetProperty("title").GetString());
        Assert.All(failedIds, i => Assert.Equal(1, UnsentCopiesTests.SentWith(app, [i])));
        Assert.True(app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id).All(c => c.NotSentReason == null && c.ResendClaim == null)));
    }
}

/// <summary>The settings of not-sent copies are checked at start: one out of range stops the server, naming it.</summary>
public sealed class UnsentCopySettingsTests
{
    [Theory]
    [InlineData("Mailboxes:KeepUnsentFor", "00:00:30")]
    [InlineData("Mailboxes:KeepUnsentFor", "91.00:00:00")]
    [InlineData("Mailboxes:ResendClaimHold", "00:00:01")]
    [InlineData("Mailboxes:ResendClaimHold", "1.00:00:01")]
    public void A_setting_out_of_range_stops_the_server_from_starting_naming_it(string key, string value)
    {
        using var app = new ConfiguredApp((key, value));
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains(key, (e as Microsoft.Extensions.Options.OptionsValidationException ?? e.InnerException ?? e).Message);
    }
}
