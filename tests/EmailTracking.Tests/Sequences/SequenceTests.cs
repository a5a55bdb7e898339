using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Replies;
using EmailTracking.Server.Sequences;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Tests.Sequences;

/// <summary>
/// Sequences through the REST API and the scheduler's passes, with sequence time on a fake clock and a recording
/// transport (the same paths through real Postfix and Dovecot are in SequenceLoopTests).
/// </summary>
public abstract class SequenceTests(SequenceApp app)
{
    const string Vienna = "Europe/Vienna";

    async Task<JsonElement> PostAsync(TestUser user, string url, object body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var res = await user.Client.PostAsJsonAsync(url, body, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == expected, $"POST {url}: {(int)res.StatusCode} {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    async Task<Guid> TemplateAsync(TestUser user, string name, string subject, string html) =>
        (await PostAsync(user, "/api/templates", new { name, subject, html }, HttpStatusCode.Created)).GetProperty("id").GetGuid();

    /// <summary>A user with a mailbox and a three-step sequence: now, two business days later, three more.</summary>
    async Task<(TestUser User, Guid Sequence, Guid Mailbox)> ThreeStepsAsync(bool stopCompany = false, string window = "09:00", string? password = null)
    {
        var user = await app.NewUserAsync(password: password);
        var mailbox = await app.MailboxAsync(user);
        var first = await TemplateAsync(user, "Intro", "A grid for {{ company }}", "<p>Hi {{ first_name }}, see <a href=\"https://encom.test/grid\">the grid</a>.</p>");
        var second = await TemplateAsync(user, "Nudge", "", "<p>{{ first_name }}, did you see my note?</p>");
        var third = await TemplateAsync(user, "Last", "", "<p>Last one, {{ first_name }}.</p>");
        var seq = await PostAsync(user, "/api/sequences", new
        {
            name = "Outreach", mailboxId = mailbox, timeZone = Vienna, stopCompanyOnReply = stopCompany, autoReplyPauseDays = 5,
            steps = new object[]
            {
                new { templateId = first, delayDays = 0, windowStart = window, windowEnd = "17:00" },
                new { templateId = second, delayDays = 2 },
                new { templateId = third, delayDays = 3 },
            },
        }, HttpStatusCode.Created);
        return (user, seq.GetProperty("id").GetGuid(), mailbox);
    }

    async Task<JsonElement> EnrolAsync(TestUser user, Guid sequence, params object[] recipients) =>
        await PostAsync(user, $"/api/sequences/{sequence}/enrolments", new { recipients });

    /// <summary>Sequence time moves to when the enrolment's next step is due (if it is not yet), and a pass runs.</summary>
    async Task DueAsync(Guid sequence, params string[] addresses)
    {
        var due = addresses.Select(a => Enrolment(sequence, a).NextAt).Max();
        if (due is { } d && d > app.Clock.GetUtcNow()) At(d);
        await app.PassAsync();
    }

    /// <summary>The mailbox connected again, and its watch through it since (as it goes at once after a reconnect).</summary>
    Task ReconnectedAndReadAsync(Guid mailbox) => app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox)
        .ExecuteUpdateAsync(u => u.SetProperty(m => m.Status, MailboxStatus.Active).SetProperty(m => m.LastSyncAt, (DateTimeOffset?)app.Clock.GetUtcNow())));

    Enrolment Enrolment(Guid sequence, string address) => app.WithDb(db => db.Enrolments.Single(e => e.SequenceId == sequence && e.Address == address));

    List<SequenceSend> Sends(Guid enrolment) => app.WithDb(db => db.SequenceSends.Where(s => s.EnrolmentId == enrolment).OrderBy(s => s.Step).ToList());

    /// <summary>An answer as a mailbox watcher records it, to the step's tracked message.</summary>
    async Task AnswerAsync(Guid mailbox, SequenceSend step, string from, EventKind kind, DateOnly? returnDate = null, bool? permanent = null, string? status = null,
        int? returnDateOffsetMinutes = null, bool departed = false)
    {
        await app.WithDbAsync(async db =>
        {
            var m = db.Messages.Single(x => x.Id == step.TrackedMessageId);
            db.InboundMessages.Add(new InboundMessage
            {
                TeamId = m.TeamId, UserId = m.UserId, ConnectionId = mailbox, ProviderId = "INBOX:1:" + Guid.NewGuid().ToString("N"),
                InternetMessageId = Guid.NewGuid().ToString("N") + "@partner.test", FromAddress = from, Subject = "Re: " + m.Subject,
                ReceivedAt = app.Clock.GetUtcNow(), Kind = kind, Reason = kind.ToString(), TrackedMessageId = m.Id, CopyId = step.CopyId,
                ReturnDate = returnDate, ReturnDateOffsetMinutes = returnDateOffsetMinutes, Permanent = permanent, Status = status, HandledAt = app.Clock.GetUtcNow(),
                Departed = departed,
            });
            await db.SaveChangesAsync();
        });
    }

    /// <summary>A message read from the user's mailbox, through the inbound pipeline as a mailbox watcher hands it over.</summary>
    async Task<InboundResult> HandleAsync(Guid mailboxId, MimeMessage message)
    {
        using var scope = app.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var connection = await db.Mailboxes.AsNoTracking().SingleAsync(m => m.Id == mailboxId);
        return await scope.ServiceProvider.GetRequiredService<InboundPipeline>()
            .HandleAsync(connection, $"INBOX:1:{Guid.NewGuid():N}", message, null, null, CancellationToken.None);
    }

    /// <summary>A message from <paramref name="from"/> to the user answering <paramref name="inReplyTo"/>, dated now by sequence time.</summary>
    MimeMessage Answer(string from, TestUser to, string subject, string inReplyTo, IEnumerable<string> references, string text)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse(from));
        m.To.Add(MailboxAddress.Parse(to.Email));
        m.Subject = subject;
        m.MessageId = $"{Guid.NewGuid():N}@encom.test";
        m.Date = app.Clock.GetUtcNow();
        m.InReplyTo = inReplyTo;
        foreach (var r in references) m.References.Add(r);
        m.Body = new TextPart("plain") { Text = text };
        return m;
    }

    /// <summary>
    /// The first step's intent is committed and the process dies before the mail leaves; the next pass, past the lease,
    /// finds a mailbox whose Sent folder cannot tell: the enrolment stops as "may or may not have left".
    /// </summary>
    async Task<(Enrolment Enrolment, SequenceSend Intent)> InterruptedAndUnsureAsync(Guid sequence, string address)
    {
        app.Transport.CrashBeforeSend[address] = true;
        await DueAsync(sequence, address);
        var intent = Assert.Single(Sends(Enrolment(sequence, address).Id));
        Assert.Equal(SequenceSendState.Intent, intent.State);
        app.Transport.CanTell = false;
        try
        {
            At(app.Clock.GetUtcNow() + app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease + TimeSpan.FromSeconds(1));
            await app.PassAsync();
        }
        finally
        {
            app.Transport.CanTell = true;
        }
        return (Enrolment(sequence, address), intent);
    }

    /// <summary>Pauses the sequence: the tests share the scheduler, and its batches are taken earliest due first.</summary>
    async Task LeaveNoOneDueAsync(TestUser user, Guid sequence) =>
        Assert.True((await user.Client.PostAsync($"/api/sequences/{sequence}/pause", null)).IsSuccessStatusCode);

    void At(DateTimeOffset when)
    {
        var now = app.Clock.GetUtcNow();
        Assert.True(when >= now, $"the fake clock cannot go back ({now:o} → {when:o})");
        app.Clock.Advance(when - now);
    }

    // ---- the three steps ----

    [Fact]
    public async Task A_follow_up_names_the_provider_thread_of_the_step_before_it_in_the_same_mailbox()
    {
        // Gmail puts mail sent through its API in a thread only when the send names the thread: by References alone a
        // follow-up started a conversation of its own in the sender's Gmail.
        var (user, sequence, mailbox) = await ThreeStepsAsync();
        var tia = $"tia-{Guid.NewGuid():N}"[..12] + "@encom.test";
        app.Transport.Threads[tia] = true;
        await EnrolAsync(user, sequence, new { email = tia, firstName = "Tia", company = "Encom" });
        await DueAsync(sequence, tia);
        await DueAsync(sequence, tia);
        var sent = app.Transport.To(tia);
        Assert.Equal(2, sent.Count);
        var sends = Sends(Enrolment(sequence, tia).Id);
        var thread = app.WithDb(db => db.Copies.Single(c => c.Id == sends[0].CopyId).ProviderThreadId);
        Assert.NotNull(thread);
        Assert.Null(app.Transport.NamedThreads[sent[0].MessageId!]);
        Assert.Equal(thread, app.Transport.NamedThreads[sent[1].MessageId!]);

        // A thread is the mailbox's own: after the sequence moved to another mailbox, the next step names none.
        var other = await app.MailboxAsync(user, $"other-{Guid.NewGuid():N}"[..14] + "@encom.test");
        await app.WithDbAsync(async db =>
        {
            await db.Sequences.Where(s => s.Id == sequence).ExecuteUpdateAsync(u => u.SetProperty(s => s.MailboxId, other));
        });
        await DueAsync(sequence, tia);
        sent = app.Transport.To(tia);
        Assert.Equal(3, sent.Count);
        Assert.Null(app.Transport.NamedThreads[sent[2].MessageId!]);
    }

    [Fact]
    public async Task Three_steps_go_in_their_windows_threaded_and_a_persons_reply_stops_the_rest()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync();
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        // A Monday at 08:00 in Vienna: before the window. (The next one on the tests' shared clock: other tests move it on.)
        var today = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime).AddDays(1);
        At(SendTimes.ToInstant(today.AddDays(((int)DayOfWeek.Monday - (int)today.DayOfWeek + 7) % 7), new TimeOnly(8, 0), SendTimes.Zone(Vienna)!));
        var monday = app.Clock.GetUtcNow();
        var report = await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        var due = report.GetProperty("enrolled")[0].GetProperty("nextAt").GetDateTimeOffset();
        var zone = SendTimes.Zone(Vienna)!;
        Assert.Equal(SendTimes.Due(monday, 0, true, new TimeOnly(9, 0), new TimeOnly(17, 0), zone), due);
        await app.PassAsync();
        Assert.Empty(app.Transport.To(sam));

        At(due);
        await app.PassAsync();
        var step1 = Assert.Single(app.Transport.To(sam));
        Assert.Equal("A grid for Encom", step1.Subject);
        Assert.Contains("Hi Sam", step1.HtmlBody);
        Assert.Contains("/o/", step1.HtmlBody); // tracked
        Assert.Contains("/c/", step1.HtmlBody);
        var unsubscribe = Enrolment(sequence, sam).UnsubscribeToken;
        Assert.Contains($"/u/{unsubscribe}", step1.HtmlBody);
        // No bulk-mail headers unless the server is told to add them (out-of-office robots ignore list mail).
        Assert.Null(step1.Headers["List-Unsubscribe"]);
        var e = Enrolment(sequence, sam);
        var sends = Sends(e.Id);
        Assert.Equal(step1.MessageId, Assert.Single(sends).MessageIdHeader);
        Assert.Equal(SequenceSendState.Sent, sends[0].State);
        Assert.Equal(1, e.NextStep);
        Assert.Equal(MessageSource.Sequence, app.WithDb(db => db.Messages.Single(m => m.Id == sends[0].TrackedMessageId).Source));

        // Two business days later, in the same conversation.
        Assert.Equal(SendTimes.Due(due, 2, true, new TimeOnly(9, 0), new TimeOnly(17, 0), zone), e.NextAt);
        At(e.NextAt!.Value.AddMinutes(-1));
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        At(e.NextAt!.Value);
        await app.PassAsync();
        var step2 = app.Transport.To(sam)[1];
        Assert.Equal("Re: A grid for Encom", step2.Subject);
        Assert.Equal(step1.MessageId, step2.InReplyTo);
        Assert.Equal([step1.MessageId!], step2.References);
        // What the Sent folder keeps of it: the step as written (Sam's pixel and tracked links would count the sender
        // reading their own Sent folder as Sam's open), in the same conversation.
        var kept = app.Transport.KeptInSent[step2.MessageId!];
        Assert.Equal(step2.Subject, kept.Subject);
        Assert.Equal(step1.MessageId, kept.InReplyTo);
        Assert.Equal([step1.MessageId!], kept.References);
        Assert.Equal(sam, Assert.Single(kept.To.Mailboxes).Address);
        Assert.Contains("Sam, did you see my note?", kept.HtmlBody);
        Assert.DoesNotContain("/o/", kept.HtmlBody);
        Assert.DoesNotContain("/c/", kept.HtmlBody);
        Assert.DoesNotContain("/o/", kept.TextBody);
        Assert.Contains($"/u/{unsubscribe}", kept.HtmlBody);

        // Sam's colleague answers step 2 (the watcher matched it to that step's message): nothing more goes.
        var second = Sends(e.Id)[1];
        await AnswerAsync(mailbox, second, "lora@encom.test", EventKind.Reply);
        await app.PassAsync();
        e = Enrolment(sequence, sam);
        Assert.Equal(EnrolmentState.Stopped, e.State);
        Assert.Equal(StopReason.Replied, e.StopReason);
        Assert.Contains("lora@encom.test", e.Note);
        At(app.Clock.GetUtcNow().AddDays(30));
        await app.PassAsync();
        Assert.Equal(2, app.Transport.To(sam).Count);

        // The enrolment list says where each is and why it stopped.
        var list = await user.Client.GetJsonAsync($"/api/sequences/{sequence}/enrolments");
        var row = list.EnumerateArray().Single();
        Assert.Equal("stopped", row.GetProperty("state").GetString());
        Assert.Equal("replied", row.GetProperty("stopReason").GetString());
        Assert.Equal(2, row.GetProperty("sends").GetArrayLength());
        Assert.Single((await user.Client.GetJsonAsync($"/api/sequences/{sequence}/enrolments?state=stopped")).EnumerateArray());
        Assert.Empty((await user.Client.GetJsonAsync($"/api/sequences/{sequence}/enrolments?state=active")).EnumerateArray());
        Assert.Equal(HttpStatusCode.BadRequest, (await user.Client.GetAsync($"/api/sequences/{sequence}/enrolments?state=exploded")).StatusCode);
    }

    [Fact]
    public async Task A_reply_from_the_enrolled_address_to_the_senders_own_mail_in_the_thread_stops_the_sequence()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var sam = $"sam-{tag}@encom.test";
        var pat = $"pat-{tag}@encom.test";
        // Pat and the salesperson wrote to each other before Pat was enrolled: that conversation does not stop Pat's sequence.
        var earlier = await user.RegisterAsync(new { from = user.Email, subject = "Hello", to = new[] { pat }, html = "<p>Hello Pat.</p>", perRecipient = true, sentAt = app.Clock.GetUtcNow() });
        var earlierId = earlier.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>');
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(mailbox, Answer(pat, user, "Re: Hello", earlierId, [earlierId], "Hi, thanks."))).Outcome);
        At(app.Clock.GetUtcNow().AddMinutes(1));
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = pat, firstName = "Pat", company = "Encom" });
        await DueAsync(sequence, sam, pat);
        var step1 = Assert.Single(app.Transport.To(sam));

        // The salesperson writes in the thread by hand, tracked as the add-ins and the web app track every mail.
        var manual = await user.RegisterAsync(new
        {
            from = user.Email, subject = "Re: " + step1.Subject, to = new[] { sam }, html = "<p>Sam, one more thing: pricing attached.</p>",
            perRecipient = true, sentAt = app.Clock.GetUtcNow(),
        });
        var manualId = manual.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>');

        // Sam's out-of-office robot answers that mail: matched to the hand-written mail, it neither stops nor pauses.
        var robot = Answer(sam, user, "Auto: Re: " + step1.Subject, manualId, [step1.MessageId!, manualId], "I am away.");
        robot.Headers.Add("Auto-Submitted", "auto-replied");
        Assert.Equal(EventKind.AutoReply, (await HandleAsync(mailbox, robot)).Kind);
        await app.PassAsync();
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, sam).State);

        // Sam answers it himself: In-Reply-To is the hand-written mail (the reply is recorded against it), References
        // the whole thread.
        var reply = Answer(sam, user, "Re: " + step1.Subject, manualId, [step1.MessageId!, manualId], "Yes, let's talk on Thursday.\n\nOn Mon, you wrote:\n> one more thing\n");
        var result = await HandleAsync(mailbox, reply);
        Assert.Equal((InboundOutcome.Recorded, EventKind.Reply), (result.Outcome, result.Kind));
        Assert.Equal(MatchedBy.InReplyTo, app.WithDb(db => db.InboundMessages.Single(i => i.InternetMessageId == reply.MessageId).MatchedBy));
        await app.PassAsync();
        var e = Enrolment(sequence, sam);
        Assert.Equal((EnrolmentState.Stopped, StopReason.Replied), (e.State, e.StopReason));
        Assert.Contains(sam, e.Note);
        await DueAsync(sequence, pat);
        Assert.Single(app.Transport.To(sam));
        Assert.Equal(2, app.Transport.To(pat).Count);
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, pat).State);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task An_out_of_office_reply_pauses_until_the_day_after_the_return_date_and_the_sequence_goes_on()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await DueAsync(sequence, alan);
        var e = Enrolment(sequence, alan);
        Assert.Single(app.Transport.To(alan));
        var back = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime).AddDays(10);
        await AnswerAsync(mailbox, Sends(e.Id)[0], alan, EventKind.AutoReply, returnDate: back);
        await app.PassAsync();
        e = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Paused, e.State);
        Assert.Contains(back.ToString("yyyy-MM-dd"), e.Note);
        // The day after the return date, at the window's opening in the recipient's zone, not before.
        var resume = SendTimes.ToInstant(back.AddDays(1), new TimeOnly(9, 0), SendTimes.Zone(Vienna)!);
        Assert.Equal(resume, e.PausedUntil);
        At(resume.AddMinutes(-5));
        await app.PassAsync();
        Assert.Single(app.Transport.To(alan));
        At(SendTimes.NextOpening(resume, true, new TimeOnly(9, 0), new TimeOnly(17, 0), SendTimes.Zone(Vienna)!));
        await app.PassAsync();
        Assert.Equal(2, app.Transport.To(alan).Count);
        e = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Active, e.State);
        Assert.Equal(2, e.NextStep);

        // A robot without a date: the sequence's default pause (5 days).
        await AnswerAsync(mailbox, Sends(e.Id)[1], alan, EventKind.AutoReply);
        await app.PassAsync();
        e = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Paused, e.State);
        Assert.Equal(app.Clock.GetUtcNow().AddDays(5), e.PausedUntil);
    }

    [Fact]
    public async Task A_second_out_of_office_reply_with_an_earlier_return_date_brings_the_next_step_forward_with_the_pause()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await DueAsync(sequence, alan);
        var e = Enrolment(sequence, alan);
        var today = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime);
        var vienna = SendTimes.Zone(Vienna)!;
        await AnswerAsync(mailbox, Sends(e.Id)[0], alan, EventKind.AutoReply, returnDate: today.AddDays(20));
        await app.PassAsync();
        Assert.Equal(SendTimes.ToInstant(today.AddDays(21), new TimeOnly(9, 0), vienna), Enrolment(sequence, alan).PausedUntil);

        // They came back early and changed their notice: the step goes when the new pause ends, not at the old one's end.
        await AnswerAsync(mailbox, Sends(e.Id)[0], alan, EventKind.AutoReply, returnDate: today.AddDays(4));
        await app.PassAsync();
        e = Enrolment(sequence, alan);
        var resume = SendTimes.ToInstant(today.AddDays(5), new TimeOnly(9, 0), vienna);
        Assert.Equal((EnrolmentState.Paused, resume), (e.State, e.PausedUntil));
        var opening = SendTimes.NextOpening(resume, true, new TimeOnly(9, 0), new TimeOnly(17, 0), vienna);
        Assert.Equal(opening, e.NextAt);
        At(opening);
        await app.PassAsync();
        Assert.Equal(2, app.Transport.To(alan).Count);

        // A later notice that says nothing new about the date does not bring the following step before its own time.
        e = Enrolment(sequence, alan);
        var own = e.NextAt;
        await AnswerAsync(mailbox, Sends(e.Id)[1], alan, EventKind.AutoReply, returnDate: today.AddDays(5));
        await app.PassAsync();
        Assert.Equal(own, Enrolment(sequence, alan).NextAt);
    }

    [Fact]
    public async Task An_auto_reply_saying_the_recipient_has_left_stops_their_enrolment_and_another_ones_only_pauses()
    {
        // Paused, the sequence would only bring each next step to the same robot, a week apart.
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        var lora = $"lora-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await EnrolAsync(user, sequence, new { email = lora, firstName = "Lora", company = "Encom" });
        await DueAsync(sequence, alan, lora);
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, alan).Id)[0], alan.ToUpperInvariant(), EventKind.AutoReply, departed: true);
        // Lora's mail reached a colleague's robot that says the colleague left: Lora has not.
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, lora).Id)[0], "ed@encom.test", EventKind.AutoReply, departed: true);
        await app.PassAsync();

        var a = Enrolment(sequence, alan);
        Assert.Equal((EnrolmentState.Stopped, StopReason.LeftCompany), (a.State, a.StopReason));
        Assert.Contains("is no longer there", a.Note);
        Assert.Null(a.NextAt);
        Assert.Equal(EnrolmentState.Paused, Enrolment(sequence, lora).State);
        var rows = (await user.Client.GetJsonAsync($"/api/sequences/{sequence}/enrolments?state=stopped")).EnumerateArray().ToList();
        Assert.Equal("left-company", Assert.Single(rows).GetProperty("stopReason").GetString());
        // Not suppressed: the address may be someone else's tomorrow.
        Assert.False(app.WithDb(db => db.Suppressions.Any(x => x.Address == alan)));
    }

    [Fact]
    public async Task A_read_receipt_or_a_delivery_notice_neither_stops_nor_pauses_the_sequence()
    {
        // Receipts used to be a person's reply (a read receipt: stopped) or an auto-reply (a delivery notice: paused a week).
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await DueAsync(sequence, alan);
        var before = Enrolment(sequence, alan);
        Assert.Single(app.Transport.To(alan));
        await AnswerAsync(mailbox, Sends(before.Id)[0], alan, EventKind.Receipt);
        await AnswerAsync(mailbox, Sends(before.Id)[0], "mailer-daemon@encom.test", EventKind.Receipt);
        await app.PassAsync();
        var after = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Active, after.State);
        Assert.Equal(StopReason.None, after.StopReason);
        Assert.Null(after.PausedUntil);
        Assert.Equal(before.NextAt, after.NextAt);
        Assert.Equal(before.Note, after.Note);
        // The next step still goes when it is due.
        await DueAsync(sequence, alan);
        Assert.Equal(2, app.Transport.To(alan).Count);
    }

    [Fact]
    public async Task A_return_date_is_the_writers_day_and_the_pause_lasts_until_the_day_after_has_begun_for_them()
    {
        // The sequence sends in Vienna's window (09:00); the auto-reply was dated in Hawaii (-10:00). At 09:00 in Vienna
        // on the day after the return date it is still the return date in Hawaii: the pause lasts until midnight there.
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var kai = $"kai-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = kai, firstName = "Kai", company = "Encom" });
        await DueAsync(sequence, kai);
        var e = Enrolment(sequence, kai);
        // Soon (the class's tests share one clock, and some expect it before a given Monday), on a working day, and not
        // before the day step 2 is due: on that day the step's own time (the time of day step 1 left, wherever the
        // shared clock stood) may come after the writer's midnight, and decide instead of the pause.
        var back = DateOnly.FromDateTime(e.NextAt!.Value.UtcDateTime);
        while (back.AddDays(1).DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday or DayOfWeek.Monday) back = back.AddDays(1);
        await AnswerAsync(mailbox, Sends(e.Id)[0], kai, EventKind.AutoReply, returnDate: back, returnDateOffsetMinutes: -600);
        await app.PassAsync();
        e = Enrolment(sequence, kai);
        Assert.Equal(EnrolmentState.Paused, e.State);
        var writersNextDay = new DateTimeOffset(back.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.FromHours(-10));
        Assert.Equal(writersNextDay, e.PausedUntil);
        var viennaOpening = SendTimes.ToInstant(back.AddDays(1), new TimeOnly(9, 0), SendTimes.Zone(Vienna)!);
        Assert.True(viennaOpening < writersNextDay);
        At(viennaOpening.AddMinutes(5));
        await app.PassAsync();
        Assert.Single(app.Transport.To(kai));
        At(writersNextDay);
        await app.PassAsync();
        Assert.Equal(2, app.Transport.To(kai).Count);

        // An answer stored before the offset was kept: the window's opening in the enrolment's zone, as before.
        var lee = $"lee-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = lee, firstName = "Lee", company = "Encom" });
        await DueAsync(sequence, lee);
        var l = Enrolment(sequence, lee);
        var leeBack = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime).AddDays(10);
        await AnswerAsync(mailbox, Sends(l.Id)[0], lee, EventKind.AutoReply, returnDate: leeBack);
        await app.PassAsync();
        Assert.Equal(SendTimes.ToInstant(leeBack.AddDays(1), new TimeOnly(9, 0), SendTimes.Zone(Vienna)!), Enrolment(sequence, lee).PausedUntil);
    }

    [Fact]
    public async Task A_reply_stored_while_the_pass_works_on_other_enrolments_keeps_the_step_from_going()
    {
        // A pass applies the answers there are, then works through its batch, a round-trip to the mail server per step:
        // a watcher may store a reply meanwhile, before the replier's own step is prepared.
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var alan = $"alan-{tag}@encom.test";
        var bob = $"bob-{tag}@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" }, new { email = bob, firstName = "Bob", company = "Encom" });
        await DueAsync(sequence, alan, bob);
        var a = Enrolment(sequence, alan);
        var b = Enrolment(sequence, bob);

        // Whichever of the two goes first in the next pass: while its step 2 is leaving, the other one's reply to step 1 is stored.
        app.Transport.WhileSending[alan] = () => AnswerAsync(mailbox, Sends(b.Id)[0], bob, EventKind.Reply);
        app.Transport.WhileSending[bob] = () => AnswerAsync(mailbox, Sends(a.Id)[0], alan, EventKind.Reply);
        await DueAsync(sequence, alan, bob);
        app.Transport.WhileSending.TryRemove(alan, out _);
        app.Transport.WhileSending.TryRemove(bob, out _);

        var (first, second) = app.Transport.To(alan).Count == 2 ? (alan, bob) : (bob, alan);
        Assert.Equal(2, app.Transport.To(first).Count);
        Assert.Single(app.Transport.To(second));
        var stopped = Enrolment(sequence, second);
        Assert.Equal((EnrolmentState.Stopped, StopReason.Replied), (stopped.State, stopped.StopReason));
        Assert.Single(Sends(stopped.Id));
        Assert.Null(stopped.LeaseOwner);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task A_reply_applied_by_another_instance_while_a_resumed_enrolments_step_is_leaving_stops_the_steps_after_it()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await DueAsync(sequence, alan);
        var e = Enrolment(sequence, alan);
        // Out of office: paused; once the pause is over, the next pass resumes the enrolment and sends step 2.
        await AnswerAsync(mailbox, Sends(e.Id)[0], alan, EventKind.AutoReply);
        await app.PassAsync();
        Assert.Equal(EnrolmentState.Paused, Enrolment(sequence, alan).State);
        At(Enrolment(sequence, alan).NextAt!.Value.AddDays(1));
        // While step 2 is leaving, Alan answers step 1, and another instance's pass reads the answer.
        app.Transport.WhileSending[alan] = async () =>
        {
            await AnswerAsync(mailbox, Sends(e.Id)[0], alan, EventKind.Reply);
            await app.PassAsync("other-instance");
        };
        await app.PassAsync();
        Assert.Equal(2, app.Transport.To(alan).Count);

        // Step 2 left (it was leaving), and the answer stopped what comes after it.
        e = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Stopped, e.State);
        Assert.Equal(StopReason.Replied, e.StopReason);
        Assert.Contains("answered", e.Note);
        Assert.Null(e.NextAt);
    }

    [Fact]
    public async Task A_reply_applied_by_another_instance_while_the_last_step_is_leaving_leaves_the_enrolment_answered_not_completed()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await DueAsync(sequence, alan);
        await DueAsync(sequence, alan);
        var e = Enrolment(sequence, alan);
        Assert.Equal(2, e.NextStep);
        // While step 3, the last, is leaving, Alan answers step 2, and another instance's pass reads the answer.
        app.Transport.WhileSending[alan] = async () =>
        {
            await AnswerAsync(mailbox, Sends(e.Id)[1], alan, EventKind.Reply);
            await app.PassAsync("other-instance");
        };
        await DueAsync(sequence, alan);
        Assert.Equal(3, app.Transport.To(alan).Count);

        // The step is recorded as sent, and the enrolment stays stopped by the answer (it counts as answered).
        Assert.All(Sends(e.Id), s => Assert.Equal(SequenceSendState.Sent, s.State));
        e = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Stopped, e.State);
        Assert.Equal(StopReason.Replied, e.StopReason);
        Assert.Contains("answered", e.Note);
    }

    [Fact]
    public async Task A_bounce_stops_the_enrolment_suppresses_the_address_and_a_new_enrolment_of_it_is_refused()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var gone = $"gone-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = gone, firstName = "Gone", company = "Encom" });
        await DueAsync(sequence, gone);
        var e = Enrolment(sequence, gone);
        // A delay notice changes nothing; the permanent failure stops it.
        await AnswerAsync(mailbox, Sends(e.Id)[0], "mailer-daemon@encom.test", EventKind.Bounce, permanent: false, status: "4.4.1");
        await app.PassAsync();
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, gone).State);
        Assert.Equal("A delivery delay was reported (4.4.1); the sequence goes on.", Enrolment(sequence, gone).Note);
        // Nor does a refusal of this mail that leaves the address alive (a spam filter's 5.7.1), which is no delay.
        await AnswerAsync(mailbox, Sends(e.Id)[0], "mailer-daemon@encom.test", EventKind.Bounce, permanent: false, status: "5.7.1");
        await app.PassAsync();
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, gone).State);
        Assert.StartsWith("The recipient's server refused this mail (5.7.1) without saying the address is gone", Enrolment(sequence, gone).Note);
        await AnswerAsync(mailbox, Sends(e.Id)[0], "mailer-daemon@encom.test", EventKind.Bounce, permanent: true, status: "5.1.1");
        await app.PassAsync();
        e = Enrolment(sequence, gone);
        Assert.Equal(StopReason.Bounced, e.StopReason);
        Assert.Contains("5.1.1", e.Note);
        var suppression = app.WithDb(db => db.Suppressions.Single(s => s.TeamId == user.TeamId && s.Address == gone));
        Assert.Equal(SuppressionReason.Bounced, suppression.Reason);

        // Another sequence of the team refuses the address, row by row.
        var (other, _, _) = (user, 0, 0);
        var seq2 = await PostAsync(other, "/api/sequences", new
        {
            name = "Second", mailboxId = mailbox, timeZone = "UTC",
            steps = new object[] { new { templateId = app.WithDb(db => db.Templates.First(t => t.UserId == user.Id && t.Name == "Intro").Id) } },
        }, HttpStatusCode.Created);
        var report = await EnrolAsync(user, seq2.GetProperty("id").GetGuid(),
            new { email = gone, firstName = "G", company = "E" }, new { email = "ok-" + gone, firstName = "O", company = "E" });
        Assert.Equal(1, report.GetProperty("enrolled").GetArrayLength());
        var rejected = report.GetProperty("rejected")[0];
        Assert.Equal(1, rejected.GetProperty("row").GetInt32());
        Assert.Contains("suppressed", rejected.GetProperty("errors")[0].GetString());
    }

    [Fact]
    public async Task A_reply_stops_colleagues_at_the_same_company_when_the_sequence_says_so_but_never_at_a_free_mail_provider()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(stopCompany: true, window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        string At_(string who, string domain) => $"{who}-{tag}@{domain}";
        var company = $"c{tag}.test";
        await EnrolAsync(user, sequence,
            new { email = At_("sam", company), firstName = "Sam", company = "C" }, new { email = At_("lora", company), firstName = "Lora", company = "C" },
            new { email = At_("ann", "gmail.com"), firstName = "Ann", company = "G" }, new { email = At_("bob", "gmail.com"), firstName = "Bob", company = "G" });
        await DueAsync(sequence, At_("sam", company));
        Assert.Equal(4, app.WithDb(db => db.SequenceSends.Count(s => db.Enrolments.Any(e => e.Id == s.EnrolmentId && e.SequenceId == sequence))));
        var sam = Enrolment(sequence, At_("sam", company));
        var ann = Enrolment(sequence, At_("ann", "gmail.com"));
        await AnswerAsync(mailbox, Sends(sam.Id)[0], At_("sam", company), EventKind.Reply);
        await AnswerAsync(mailbox, Sends(ann.Id)[0], At_("ann", "gmail.com"), EventKind.Reply);
        await app.PassAsync();
        Assert.Equal(StopReason.Replied, Enrolment(sequence, At_("sam", company)).StopReason);
        var lora = Enrolment(sequence, At_("lora", company));
        Assert.Equal(StopReason.ColleagueReplied, lora.StopReason);
        Assert.Contains(At_("sam", company), lora.Note);
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, At_("bob", "gmail.com")).State);
    }

    [Fact]
    public async Task One_person_with_their_domain_in_punycode_and_in_unicode_is_enrolled_once_and_suppressed_in_both_forms()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var zoe = $"zoe-{tag}@xn--r8jz45g.jp";
        await EnrolAsync(user, sequence, new { email = zoe, firstName = "Zoe", company = "Rei" });
        // The same person again, with her domain in Unicode; and one person twice in one request.
        var report = await EnrolAsync(user, sequence, new { email = $"zoe-{tag}@例え.jp", firstName = "Zoe", company = "Rei" },
            new { email = $"kai-{tag}@例え.jp", firstName = "Kai", company = "Rei" }, new { email = $"KAI-{tag}@XN--R8JZ45G.jp", firstName = "Kai", company = "Rei" });
        Assert.Equal([$"kai-{tag}@例え.jp"], report.GetProperty("enrolled").EnumerateArray().Select(r => r.GetProperty("email").GetString()));
        var rejected = report.GetProperty("rejected").EnumerateArray().ToDictionary(r => r.GetProperty("row").GetInt32(), r => r.GetProperty("errors")[0].GetString());
        Assert.Contains("already enrolled", rejected[1]);
        Assert.Contains("also on row 2", rejected[3]);

        // A second sequence of the team enrols both before anything happens, in the other forms.
        var seq2 = (await PostAsync(user, "/api/sequences", new
        {
            name = "Second", mailboxId = mailbox, timeZone = "UTC",
            steps = new object[] { new { templateId = app.WithDb(db => db.Templates.First(t => t.UserId == user.Id && t.Name == "Intro").Id), delayDays = 1 } },
        }, HttpStatusCode.Created)).GetProperty("id").GetGuid();
        Assert.Equal(2, (await EnrolAsync(user, seq2, new { email = $"zoe-{tag}@例え.jp", firstName = "Zoe", company = "Rei" },
            new { email = $"kai-{tag}@xn--r8jz45g.jp", firstName = "Kai", company = "Rei" })).GetProperty("enrolled").GetArrayLength());

        // Kai is suppressed by hand in his Unicode form: his punycode enrolment stops, and its unsubscribe page says so.
        await PostAsync(user, "/api/suppressions", new { address = $"kai-{tag}@例え.jp" }, HttpStatusCode.NoContent);
        var kai = Enrolment(seq2, $"kai-{tag}@xn--r8jz45g.jp");
        Assert.Equal(StopReason.Suppressed, kai.StopReason);
        using var browser = app.Anonymous("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        Assert.Contains("You are unsubscribed", await browser.GetStringAsync($"/u/{kai.UnsubscribeToken}"));
        // Suppressing the other form too adds nothing.
        await PostAsync(user, "/api/suppressions", new { address = $"kai-{tag}@xn--r8jz45g.jp" }, HttpStatusCode.NoContent);
        Assert.Equal(1, app.WithDb(db => db.Suppressions.Count(s => s.TeamId == user.TeamId && s.Address.StartsWith($"kai-{tag}@"))));

        // Zoe's first step bounces in punycode: her Unicode enrolment in the second sequence is never written to.
        await DueAsync(sequence, zoe);
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, zoe).Id)[0], "mailer-daemon@xn--r8jz45g.jp", EventKind.Bounce, permanent: true, status: "5.1.1");
        await app.PassAsync();
        Assert.Equal(StopReason.Bounced, Enrolment(sequence, zoe).StopReason);
        await DueAsync(seq2, $"zoe-{tag}@例え.jp");
        Assert.Equal(StopReason.Suppressed, Enrolment(seq2, $"zoe-{tag}@例え.jp").StopReason);
        Assert.Empty(Sends(Enrolment(seq2, $"zoe-{tag}@例え.jp").Id));
        // Someone suppressed in one form is not enrolled in the other.
        await PostAsync(user, "/api/suppressions", new { address = $"ann-{tag}@xn--r8jz45g.jp" }, HttpStatusCode.NoContent);
        var refused = await EnrolAsync(user, seq2, new { email = $"ann-{tag}@例え.jp", firstName = "Ann", company = "Rei" });
        Assert.Contains("suppressed", refused.GetProperty("rejected")[0].GetProperty("errors")[0].GetString());
    }

    [Fact]
    public async Task A_reply_stops_colleagues_whose_company_domain_was_written_the_other_way()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(stopCompany: true, window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var sam = $"sam-{tag}@xn--r8jz45g.jp";
        var lora = $"lora-{tag}@例え.jp";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Rei" }, new { email = lora, firstName = "Lora", company = "Rei" });
        await DueAsync(sequence, sam, lora);
        // Read from the mail in Unicode, as MimeKit reads a lower-case punycode domain.
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, sam).Id)[0], $"sam-{tag}@例え.jp", EventKind.Reply);
        await app.PassAsync();
        Assert.Equal(StopReason.Replied, Enrolment(sequence, sam).StopReason);
        Assert.Equal(StopReason.ColleagueReplied, Enrolment(sequence, lora).StopReason);
    }

    // ---- never twice ----

    [Fact]
    public async Task After_a_crash_between_sending_and_recording_the_step_is_found_in_Sent_and_not_sent_again()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        var e = Enrolment(sequence, sam);

        // The state a crash right after the send leaves: the intent committed, the mail in Sent, nothing recorded.
        app.Transport.CrashAfterSend[sam] = true;
        await DueAsync(sequence, sam);
        Assert.Single(app.Transport.To(sam));
        var send = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Intent, send.State);
        // The crashed instance's lease runs out; the next pass looks in Sent first.
        At(app.Clock.GetUtcNow() + app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease + TimeSpan.FromSeconds(1));
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        send = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Sent, send.State);
        Assert.Equal(1, Enrolment(sequence, sam).NextStep);
    }

    [Fact]
    public async Task After_a_crash_before_the_mail_left_the_step_is_sent_once_and_a_mailbox_that_cannot_tell_stops_it()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        var kev = $"kev-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        app.Transport.CrashBeforeSend[sam] = true;
        await DueAsync(sequence, sam);
        Assert.Empty(app.Transport.To(sam));
        var e = Enrolment(sequence, sam);
        var intent = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Intent, intent.State);
        At(app.Clock.GetUtcNow() + app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease + TimeSpan.FromSeconds(1));
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        var sent = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Sent, sent.State);
        Assert.Equal(2, sent.Attempts);
        // The unsent registration is gone; the list of messages shows only what left.
        Assert.False(app.WithDb(db => db.Messages.Any(m => m.Id == intent.TrackedMessageId)));

        // A mailbox that keeps no Sent copy cannot say: the enrolment stops and says why, nothing is sent blind.
        await EnrolAsync(user, sequence, new { email = kev, firstName = "Kev", company = "Encom" });
        var (k, _) = await InterruptedAndUnsureAsync(sequence, kev);
        Assert.Equal(StopReason.Failed, k.StopReason);
        Assert.Contains("may or may not have left", k.Note);
        Assert.Empty(app.Transport.To(kev));
    }

    [Fact]
    public async Task A_step_interrupted_before_it_left_that_then_waits_for_its_mailbox_is_sent_once_later()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        app.Transport.CrashBeforeSend[sam] = true;
        await DueAsync(sequence, sam);
        var e = Enrolment(sequence, sam);
        Assert.Equal(SequenceSendState.Intent, Assert.Single(Sends(e.Id)).State);
        At(app.Clock.GetUtcNow() + app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease + TimeSpan.FromSeconds(1));
        // Another send through the mailbox holds its next slot: the step, found not in Sent, has to wait for it.
        var slot = app.Clock.GetUtcNow().AddMinutes(1);
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox).ExecuteUpdateAsync(u => u.SetProperty(m => m.NextSendAt, slot)));
        await app.PassAsync();
        Assert.Empty(app.Transport.To(sam));
        At(Enrolment(sequence, sam).NextAt!.Value);
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        Assert.Equal(1, Enrolment(sequence, sam).NextStep);
        Assert.Equal(SequenceSendState.Sent, Assert.Single(Sends(e.Id)).State);
    }

    [Fact]
    public async Task A_step_that_ends_in_an_error_waits_for_its_lease_and_says_so()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        app.Transport.CrashBeforeSend[sam] = true;
        await DueAsync(sequence, sam);
        // It would most likely end in the error again at once, and its enrolment, due longest ago, would be the first
        // taken by every pass: it keeps its lease until it runs out, and its note says why it waits.
        var e = Enrolment(sequence, sam);
        Assert.Equal("test-instance", e.LeaseOwner);
        Assert.Contains("ended in an error", e.Note);
        await app.PassAsync();
        await app.PassAsync("other-instance");
        var intent = Assert.Single(Sends(e.Id));
        Assert.Equal((SequenceSendState.Intent, 1), (intent.State, intent.Attempts));
        Assert.Empty(app.Transport.To(sam));

        // Once the lease has run out, the step (not in Sent) is prepared again and goes once.
        At(e.LeaseUntil!.Value + TimeSpan.FromSeconds(1));
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        e = Enrolment(sequence, sam);
        Assert.Equal((1, (string?)null, (string?)null), (e.NextStep, e.LeaseOwner, e.Note));
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task An_intent_whose_registration_is_gone_is_prepared_again_and_sent_once()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        app.Transport.CrashBeforeSend[sam] = true;
        await DueAsync(sequence, sam);
        var e = Enrolment(sequence, sam);
        var intent = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Intent, intent.State);

        // What a crash between removing the registration of a step that did not leave and saving its send as failed
        // used to leave: an intent whose copy is gone. It never left, and is prepared and sent once.
        await app.WithDbAsync(db => db.Messages.Where(m => m.Id == intent.TrackedMessageId).ExecuteDeleteAsync());
        for (var i = 0; i < 2; i++)
        {
            At(app.Clock.GetUtcNow() + app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease + TimeSpan.FromSeconds(1));
            await app.PassAsync();
        }
        Assert.Single(app.Transport.To(sam));
        e = Enrolment(sequence, sam);
        Assert.Equal((EnrolmentState.Active, 1, (string?)null), (e.State, e.NextStep, e.LeaseOwner));
        var sent = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Sent, sent.State);
        Assert.NotEqual(intent.TrackedMessageId, sent.TrackedMessageId);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task A_step_refused_for_now_is_tried_again_later_and_sent_once_and_refused_too_often_it_stops()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var o = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value;
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        var kim = $"kim-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = kim, firstName = "Kim", company = "Encom" });
        app.Transport.RefuseForNow[sam] = 2; // greylisted twice, then taken
        app.Transport.RefuseForNow[kim] = 1000; // refused for now, every time

        await DueAsync(sequence, sam, kim);
        var e = Enrolment(sequence, sam);
        Assert.Equal(EnrolmentState.Active, e.State);
        Assert.Equal(0, e.NextStep);
        Assert.Contains("451", e.Note);
        Assert.Contains("trying again", e.Note);
        Assert.Equal(app.Clock.GetUtcNow() + o.MailboxRetry, e.NextAt);
        // The refused try keeps no registration behind: a tracked message exists only for mail that left or may have.
        var refused = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Failed, refused.State);
        Assert.False(app.WithDb(db => db.Messages.Any(m => m.Id == refused.TrackedMessageId)));

        await DueAsync(sequence, sam);
        Assert.Equal(0, Enrolment(sequence, sam).NextStep);
        await DueAsync(sequence, sam);
        Assert.Single(app.Transport.To(sam));
        e = Enrolment(sequence, sam);
        Assert.Equal(1, e.NextStep);
        Assert.Null(e.Note);
        var sent = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Sent, sent.State);
        Assert.Equal(3, sent.Attempts);

        for (var i = 0; i < o.MaxAttempts && Enrolment(sequence, kim).State == EnrolmentState.Active; i++) await DueAsync(sequence, kim);
        var k = Enrolment(sequence, kim);
        Assert.Equal(EnrolmentState.Stopped, k.State);
        Assert.Equal(StopReason.Failed, k.StopReason);
        Assert.Contains($"failed {o.MaxAttempts} times", k.Note);
        Assert.Contains("451", k.Note);
        Assert.Empty(app.Transport.To(kim));
    }

    [Fact]
    public async Task A_connection_lost_after_the_mail_was_handed_over_is_looked_for_in_Sent_before_it_goes_again()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        var kim = $"kim-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = kim, firstName = "Kim", company = "Encom" });
        app.Transport.LostAfterHandover[sam] = true;  // it left all the same
        app.Transport.LostAfterHandover[kim] = false; // it did not

        await DueAsync(sequence, sam, kim);
        foreach (var address in new[] { sam, kim })
        {
            var waiting = Enrolment(sequence, address);
            Assert.Equal(EnrolmentState.Active, waiting.State);
            Assert.Contains("trying again", waiting.Note);
            // The intent stays until the Sent folder has been asked.
            Assert.Equal(SequenceSendState.Intent, Assert.Single(Sends(waiting.Id)).State);
        }

        await DueAsync(sequence, sam, kim);
        Assert.Single(app.Transport.To(sam)); // found in Sent: recorded, not sent again
        Assert.Single(app.Transport.To(kim)); // not in Sent: sent now
        foreach (var address in new[] { sam, kim })
        {
            var e = Enrolment(sequence, address);
            Assert.Equal(1, e.NextStep);
            Assert.Equal(SequenceSendState.Sent, Assert.Single(Sends(e.Id)).State);
        }
    }

    [Fact]
    public async Task After_a_crash_the_step_is_looked_for_in_the_Sent_folder_of_the_mailbox_it_went_through()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        app.Transport.CrashAfterSend[sam] = true;
        await DueAsync(sequence, sam);
        Assert.Single(app.Transport.To(sam));
        var e = Enrolment(sequence, sam);
        Assert.Equal(SequenceSendState.Intent, Assert.Single(Sends(e.Id)).State);
        // Meanwhile the owner moves the sequence to another of their mailboxes, whose Sent folder does not hold the step.
        var other = await app.MailboxAsync(user, $"b-{Guid.NewGuid():N}"[..12] + "@sender.test");
        await app.WithDbAsync(db => db.Sequences.Where(s => s.Id == sequence).ExecuteUpdateAsync(u => u.SetProperty(s => s.MailboxId, other)));
        At(app.Clock.GetUtcNow() + app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease + TimeSpan.FromSeconds(1));
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        Assert.Equal(SequenceSendState.Sent, Assert.Single(Sends(e.Id)).State);
        Assert.Equal(1, Enrolment(sequence, sam).NextStep);
    }

    [Fact]
    public async Task Two_scheduler_instances_working_at_once_send_each_step_once()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var people = Enumerable.Range(0, 12).Select(i => $"twin{i}-{Guid.NewGuid():N}"[..16] + "@encom.test").ToArray();
        await EnrolAsync(user, sequence, [.. people.Select(p => new { email = p, firstName = "T", company = "E" })]);
        var due = people.Select(p => Enrolment(sequence, p).NextAt).Max()!.Value;
        if (due > app.Clock.GetUtcNow()) At(due);
        async Task Instance(string name)
        {
            for (var i = 0; i < 3; i++)
            {
                using var scope = app.Services.CreateScope();
                await scope.ServiceProvider.GetRequiredService<SequenceRunner>().RunOnceAsync(name, "https://t.example.com", CancellationToken.None);
            }
        }
        await Task.WhenAll(Instance("one"), Instance("two"));
        Assert.All(people, p => Assert.Single(app.Transport.To(p)));
        Assert.All(people, p => Assert.Equal(1, Enrolment(sequence, p).NextStep));
        Assert.All(people, p => Assert.Null(Enrolment(sequence, p).LeaseOwner));
    }

    // ---- limits and waiting ----

    [Fact]
    public async Task A_mailbox_sends_at_most_its_daily_limit_and_a_mailbox_that_needs_reconnecting_makes_enrolments_wait()
    {
        var o = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value;
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var people = Enumerable.Range(0, 5).Select(i => new { email = $"p{i}-{Guid.NewGuid():N}"[..14] + "@encom.test", firstName = "P", company = "E" }).ToArray();
        await EnrolAsync(user, sequence, people);
        var limit = o.DailyLimitPerMailbox;
        o.DailyLimitPerMailbox = 3;
        try
        {
            await DueAsync(sequence, [.. people.Select(p => p.email)]);
            var sent = people.Count(p => app.Transport.To(p.email).Count == 1);
            Assert.Equal(3, sent);
            var waiting = people.Select(p => Enrolment(sequence, p.email)).Where(e => e.NextStep == 0).ToList();
            Assert.Equal(2, waiting.Count);
            Assert.All(waiting, w => Assert.Contains("3 sequence emails", w.Note));
            At(waiting[0].NextAt!.Value);
            await app.PassAsync();
            // A day later may be a Saturday: a step then waits for its window's next opening.
            foreach (var w in waiting)
            {
                if (Enrolment(sequence, w.Address) is not { NextStep: 0 } still) continue;
                At(still.NextAt!.Value.Max(app.Clock.GetUtcNow()));
                await app.PassAsync();
            }
            Assert.All(people, p => Assert.Single(app.Transport.To(p.email)));
        }
        finally
        {
            o.DailyLimitPerMailbox = limit;
        }

        // The mailbox needs reconnecting: due steps wait, with the reason; once reconnected and read again they go.
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox).ExecuteUpdateAsync(u => u.SetProperty(m => m.Status, MailboxStatus.NeedsReconnect)));
        var e0 = Enrolment(sequence, people[0].email);
        At(e0.NextAt!.Value);
        await app.PassAsync();
        Assert.Single(app.Transport.To(people[0].email));
        Assert.Contains("needs to be reconnected", Enrolment(sequence, people[0].email).Note);
        await ReconnectedAndReadAsync(mailbox);
        At(Enrolment(sequence, people[0].email).NextAt!.Value);
        await app.PassAsync();
        Assert.Equal(2, app.Transport.To(people[0].email).Count);

        // The server refusing a login mid-way marks the mailbox and keeps the intent: nothing is lost or doubled.
        var before = people.ToDictionary(p => p.email, p => app.Transport.To(p.email).Count);
        app.Transport.FailNext[people[1].email] = new MailboxException("535 authentication failed", needsReconnect: true);
        await DueAsync(sequence, people[1].email);
        Assert.Equal(MailboxStatus.NeedsReconnect, app.WithDb(db => db.Mailboxes.Single(m => m.Id == mailbox).Status));
        Assert.Equal(before[people[1].email], app.Transport.To(people[1].email).Count);
        Assert.Contains("needs to be reconnected", Enrolment(sequence, people[1].email).Note);
        await ReconnectedAndReadAsync(mailbox);
        await DueAsync(sequence, people[1].email);
        Assert.Equal(before[people[1].email] + 1, app.Transport.To(people[1].email).Count);
        Assert.Equal(app.Transport.Sent.Count, app.Transport.Sent.Select(m => m.MessageId).Distinct().Count());
    }

    [Fact]
    public async Task Instances_sending_through_one_mailbox_at_once_with_no_spacing_stay_within_its_daily_limit()
    {
        var o = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value;
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var people = Enumerable.Range(0, 16).Select(i => new { email = $"q{i}-{Guid.NewGuid():N}"[..14] + "@encom.test", firstName = "Q", company = "E" }).ToArray();
        await EnrolAsync(user, sequence, people);
        var (limit, batch) = (o.DailyLimitPerMailbox, o.Batch);
        o.DailyLimitPerMailbox = 4;
        // Each pass takes two enrolments, so that all eight work on the one mailbox at the same time.
        o.Batch = 2;
        try
        {
            var due = people.Select(p => Enrolment(sequence, p.email).NextAt).Max();
            if (due is { } d && d > app.Clock.GetUtcNow()) At(d);
            // Eight instances' passes at once (the spacing is 0 in these tests), round after round: each holds the
            // mailbox's send lock while it counts the day's sends and records its intent (the others wait for it), so
            // together they send the limit and no more. Without the lock they sent 5 to 8 here.
            // Until every enrolment has either sent or been told the limit is reached (those that found the lock held
            // try again when it runs out).
            bool Pending() => people.Select(p => Enrolment(sequence, p.email))
                .Any(x => x.NextStep == 0 && !(x.Note ?? "").Contains("4 sequence emails", StringComparison.Ordinal));
            for (var round = 0; round < 30; round++)
            {
                await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() => app.PassAsync($"instance-{i}"))));
                if (!Pending()) break;
                At(app.Clock.GetUtcNow().AddSeconds(31));
            }
            Assert.False(Pending(), "some enrolment was never taken up");
            Assert.Equal(4, people.Sum(p => app.Transport.To(p.email).Count));
            Assert.Equal(4, app.WithDb(db => db.SequenceSends.Count(s => s.MailboxId == mailbox && s.State != SequenceSendState.Failed)));
            // The lock is given back by the last passes (the clock has not moved since): the mailbox waits for no one.
            Assert.True(app.WithDb(db => db.Mailboxes.Single(m => m.Id == mailbox).NextSendAt) <= app.Clock.GetUtcNow());
            Assert.All(people.Select(p => Enrolment(sequence, p.email)).Where(e => e.NextStep == 0), e => Assert.Contains("4 sequence emails", e.Note));
        }
        finally
        {
            (o.DailyLimitPerMailbox, o.Batch) = (limit, batch);
            // Its waiting enrolments would fall due in the later tests' passes (which take 20 at a time) and crowd them out.
            await app.WithDbAsync(db => db.Sequences.Where(x => x.Id == sequence).ExecuteUpdateAsync(u => u.SetProperty(x => x.Status, SequenceStatus.Paused)));
        }
    }

    [Fact]
    public async Task A_deactivated_owners_sequence_sends_nothing_until_they_are_reactivated()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        // Deactivated as the Team page does it: their mailbox is no longer watched, so no reply could stop the steps.
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.LockoutEnd, (DateTimeOffset?)EmailTracking.Server.Accounts.TeamMembers.DeactivatedUntil)));
        await DueAsync(sequence, sam);
        Assert.Empty(app.Transport.To(sam));
        Assert.Contains("is deactivated", Enrolment(sequence, sam).Note);
        Assert.Equal(0, Enrolment(sequence, sam).NextStep);

        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.LockoutEnd, (DateTimeOffset?)null)));
        // Reactivated: a reply Sam sent meanwhile is in the mailbox, not yet read; nothing goes before the watch has been
        // through the mailbox.
        await DueAsync(sequence, sam);
        Assert.Empty(app.Transport.To(sam));
        Assert.Contains("is read for replies that came meanwhile", Enrolment(sequence, sam).Note);
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.UserId == user.Id)
            .ExecuteUpdateAsync(m => m.SetProperty(x => x.LastSyncAt, (DateTimeOffset?)app.Clock.GetUtcNow())));
        await DueAsync(sequence, sam);
        Assert.Single(app.Transport.To(sam));
    }

    [Fact]
    public async Task A_mailbox_connected_again_is_read_for_replies_that_came_meanwhile_before_the_next_step_goes()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox).ExecuteUpdateAsync(u => u.SetProperty(m => m.Status, MailboxStatus.NeedsReconnect)));
        await DueAsync(sequence, sam);
        Assert.Empty(app.Transport.To(sam));
        Assert.Contains("needs to be reconnected", Enrolment(sequence, sam).Note);

        // Connected again. While it was not, its watch could not read it: a reply Sam sent meanwhile is there, unread,
        // and nothing goes before the watch has been through the mailbox.
        At(app.Clock.GetUtcNow().AddMinutes(1));
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox).ExecuteUpdateAsync(u => u.SetProperty(m => m.Status, MailboxStatus.Active)));
        await DueAsync(sequence, sam);
        Assert.Empty(app.Transport.To(sam));
        Assert.Contains("is read for replies that came meanwhile", Enrolment(sequence, sam).Note);
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox)
            .ExecuteUpdateAsync(m => m.SetProperty(x => x.LastSyncAt, (DateTimeOffset?)app.Clock.GetUtcNow())));
        await DueAsync(sequence, sam);
        Assert.Single(app.Transport.To(sam));
    }

    [Fact]
    public async Task A_step_that_waited_for_its_mailbox_into_the_evening_goes_at_the_next_opening_of_its_window()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync();
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        var zone = SendTimes.Zone(Vienna)!;
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == mailbox).ExecuteUpdateAsync(u => u.SetProperty(m => m.Status, MailboxStatus.NeedsReconnect)));
        await DueAsync(sequence, sam);
        Assert.Empty(app.Transport.To(sam));
        Assert.Contains("needs to be reconnected", Enrolment(sequence, sam).Note);

        // The mailbox is reconnected at 18:30 in Vienna, after the window (09:00 to 17:00) closed: nothing goes tonight.
        var local = TimeZoneInfo.ConvertTime(app.Clock.GetUtcNow(), zone);
        At(SendTimes.ToInstant(DateOnly.FromDateTime(local.DateTime), new TimeOnly(18, 30), zone));
        await ReconnectedAndReadAsync(mailbox);
        await app.PassAsync();
        Assert.Empty(app.Transport.To(sam));
        var next = Enrolment(sequence, sam).NextAt!.Value;
        var opening = TimeZoneInfo.ConvertTime(next, zone);
        Assert.Equal(new TimeOnly(9, 0), TimeOnly.FromDateTime(opening.DateTime));
        Assert.True(SendTimes.IsBusinessDay(DateOnly.FromDateTime(opening.DateTime)));
        At(next);
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
    }

    [Fact]
    public async Task Spacing_keeps_sends_through_one_mailbox_apart_and_a_paused_sequence_sends_nothing()
    {
        var o = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value;
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var a = $"a-{Guid.NewGuid():N}"[..12] + "@encom.test";
        var b = $"b-{Guid.NewGuid():N}"[..12] + "@encom.test";
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsync($"/api/sequences/{sequence}/pause", null)).StatusCode);
        await EnrolAsync(user, sequence, new { email = a, firstName = "A", company = "E" }, new { email = b, firstName = "B", company = "E" });
        await app.PassAsync();
        Assert.Empty(app.Transport.To(a).Concat(app.Transport.To(b)));
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsync($"/api/sequences/{sequence}/resume", null)).StatusCode);
        var spacing = o.MinSpacing;
        o.MinSpacing = TimeSpan.FromSeconds(40);
        try
        {
            await DueAsync(sequence, a, b);
            Assert.Equal(1, app.Transport.To(a).Count + app.Transport.To(b).Count);
            At(app.Clock.GetUtcNow().AddSeconds(39));
            await app.PassAsync();
            Assert.Equal(1, app.Transport.To(a).Count + app.Transport.To(b).Count);
            At(app.Clock.GetUtcNow().AddSeconds(1));
            await app.PassAsync();
            Assert.Equal(2, app.Transport.To(a).Count + app.Transport.To(b).Count);
        }
        finally
        {
            o.MinSpacing = spacing;
        }
    }

    // ---- unsubscribe ----

    [Fact]
    public async Task The_unsubscribe_link_asks_first_and_its_button_or_one_click_post_stops_and_suppresses()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        var lora = $"lora-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = lora, firstName = "Lora", company = "Encom" });
        var o = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value;
        o.ListUnsubscribeHeader = true;
        try
        {
            await DueAsync(sequence, sam, lora);
        }
        finally
        {
            o.ListUnsubscribeHeader = false;
        }
        var mail = Assert.Single(app.Transport.To(lora));
        Assert.Equal($"<https://t.example.com/u/{Enrolment(sequence, lora).UnsubscribeToken}>", mail.Headers["List-Unsubscribe"]);
        Assert.Equal("List-Unsubscribe=One-Click", mail.Headers["List-Unsubscribe-Post"]);
        using var browser = app.Anonymous("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        var token = Enrolment(sequence, sam).UnsubscribeToken;

        // Opening the link (as a scanner would) changes nothing.
        var page = await browser.GetAsync($"/u/{token}");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<form method=\"post\">", await page.Content.ReadAsStringAsync());
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, sam).State);

        var confirm = await browser.PostAsync($"/u/{token}", new FormUrlEncodedContent([]));
        Assert.Equal(HttpStatusCode.OK, confirm.StatusCode);
        Assert.Contains("You are unsubscribed", await confirm.Content.ReadAsStringAsync());
        Assert.Equal(StopReason.Unsubscribed, Enrolment(sequence, sam).StopReason);
        Assert.Equal(SuppressionReason.Unsubscribed, app.WithDb(db => db.Suppressions.Single(s => s.TeamId == user.TeamId && s.Address == sam)).Reason);
        Assert.Contains("You are unsubscribed", await browser.GetStringAsync($"/u/{token}"));

        // RFC 8058 one-click from the List-Unsubscribe header.
        var oneClick = await browser.PostAsync($"/u/{Enrolment(sequence, lora).UnsubscribeToken}",
            new StringContent("List-Unsubscribe=One-Click", Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.OK, oneClick.StatusCode);
        Assert.Equal(StopReason.Unsubscribed, Enrolment(sequence, lora).StopReason);

        // Unknown or malformed tokens: a plain 404.
        foreach (var bad in new[] { "AAAAAAAAAAAAAAAAAAAAAAAA", "..%2F..%2Fetc", new string('x', 3000) })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync($"/u/{bad}")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await browser.PostAsync($"/u/{bad}", null)).StatusCode);
        }
        At(app.Clock.GetUtcNow().AddDays(30));
        await app.PassAsync();
        Assert.Single(app.Transport.To(sam));
        Assert.Single(app.Transport.To(lora));
    }

    // ---- bad input ----

    [Fact]
    public async Task A_template_that_would_write_megabytes_is_refused_when_saved_not_rendered_for_each_recipient()
    {
        var user = await app.NewUserAsync();
        // Doubling a value: 22 times is 32 MB, 40 times would take the server's memory.
        const string doubling = "{% assign s = \"xxxxxxxx\" %}{% for i in (1..22) %}{% assign s = s | append: s %}{% endfor %}";
        foreach (var html in new[] { doubling + "<p>{{ s | size }}</p>", "{% for i in (1..1000) %}{% for j in (1..90) %}<p>" + new string('y', 2000) + "</p>{% endfor %}{% endfor %}" })
        {
            var res = await user.Client.PostAsJsonAsync("/api/templates", new { name = "big", subject = "Hi", html });
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text[..Math.Min(300, text.Length)]}");
            Assert.Contains("characters", JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("html")[0].GetString());
        }
        // Ordinary loops and assignments still work.
        await TemplateAsync(user, "small", "Hi", "{% assign n = first_name | default: \"there\" %}{% for i in (1..3) %}<p>{{ i }} {{ n }}</p>{% endfor %}");
    }

    [Fact]
    public async Task A_template_nested_thousands_deep_is_refused_naming_the_limit_and_the_server_lives_on()
    {
        // Fluid's parser recursed once per level: at 3,000 the stack overflowed and the process ended (no 500: nothing
        // answered any more). 2,000 nested parentheses still got Fluid's own 400.
        var (user, sequence, _) = await ThreeStepsAsync();
        string Repeat(string s, int n) => string.Concat(Enumerable.Repeat(s, n));
        var deep = new[]
        {
            "{{ " + new string('(', 3000) + "1" + new string(')', 3000) + " }}",
            "{{ " + Repeat("a[", 3000) + "1" + new string(']', 3000) + " }}",
            Repeat("{% if x %}", 3000) + "x" + Repeat("{% endif %}", 3000),
        };
        var kept = await TemplateAsync(user, "Kept", "Hi", "<p>Hi</p>");
        async Task RefusedAsync(HttpResponseMessage res, string field)
        {
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text[..Math.Min(300, text.Length)]}");
            var message = JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty(field)[0].GetString();
            Assert.Contains($"nested more than {TemplateNesting.MaxDepth} deep", message);
        }
        foreach (var html in deep)
        {
            await RefusedAsync(await user.Client.PostAsJsonAsync("/api/templates", new { name = "m", subject = "s", html }), "html");
            await RefusedAsync(await user.Client.PutAsJsonAsync($"/api/templates/{kept}", new { name = "m", subject = "s", html }), "html");
        }
        var subject = "{{ " + new string('(', 400) + "1" + new string(')', 400) + " }}";
        await RefusedAsync(await user.Client.PostAsJsonAsync("/api/templates", new { name = "m", subject, html = "<p>Hi</p>" }), "subject");
        Assert.Equal("<p>Hi</p>", app.WithDb(db => db.Templates.Single(t => t.Id == kept).Html));

        // A template already stored so deep (written to the database here) is not read by Fluid either: it is listed,
        // its preview and an enrolment say why it cannot be written, and a step due with it stops its enrolment.
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        var first = app.WithDb(db => db.SequenceSteps.Single(s => s.SequenceId == sequence && s.Position == 0).TemplateId);
        await app.WithDbAsync(async db =>
        {
            await db.Templates.Where(t => t.Id == first).ExecuteUpdateAsync(u => u.SetProperty(t => t.Html, deep[0]));
        });
        var listed = await user.Client.GetAsync($"/api/templates/{first}");
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        var preview = await PostAsync(user, $"/api/templates/{first}/preview", new { recipient = new { email = "kim@encom.test", firstName = "Kim", company = "Encom" } });
        Assert.Contains(preview.GetProperty("errors").EnumerateArray(), e => e.GetString()!.Contains("nested more than"));
        var report = await EnrolAsync(user, sequence, new { email = "kim@encom.test", firstName = "Kim", company = "Encom" });
        Assert.Contains("nested more than", report.GetProperty("rejected")[0].GetProperty("errors")[0].GetString());
        await DueAsync(sequence, sam);
        var stopped = Enrolment(sequence, sam);
        Assert.Equal(EnrolmentState.Stopped, stopped.State);
        Assert.Contains("nested more than", stopped.Note);
        Assert.Empty(app.Transport.To(sam));

        // The server still answers.
        Assert.Equal(HttpStatusCode.OK, (await user.Client.GetAsync("/api/templates")).StatusCode);
    }

    [Fact]
    public async Task A_template_over_the_step_limit_is_refused_saying_it_does_too_much_work()
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.PostAsJsonAsync("/api/templates", new
        {
            name = "loops", subject = "Hi", html = "{% for i in (1..300) %}{% for j in (1..300) %}x{% endfor %}{% endfor %}",
        });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text}");
        var message = JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("html")[0].GetString();
        Assert.Equal("Body: " + MergeTemplates.TooMuchWork, message);
        Assert.DoesNotContain("include", message);
    }

    [Fact]
    public async Task A_template_with_an_include_is_refused_with_a_400_not_a_500()
    {
        // Fluid's "file not found" escaped.
        var user = await app.NewUserAsync();
        var include = await user.Client.PostAsJsonAsync("/api/templates", new { name = "footer", subject = "Hi", html = "<p>Hi</p>{% include 'footer' %}" });
        var text = await include.Content.ReadAsStringAsync();
        Assert.True(include.StatusCode == HttpStatusCode.BadRequest, $"{(int)include.StatusCode} {text}");
        Assert.Equal("Body: " + MergeTemplates.NoInclude, JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("html")[0].GetString());
    }

    [Fact]
    public async Task A_field_name_no_one_can_have_is_refused_when_saved_and_previews_and_enrolments_name_the_field_meant()
    {
        var (user, sequence, _) = await ThreeStepsAsync();
        var res = await user.Client.PostAsJsonAsync("/api/templates", new { name = "camel", subject = "Hi", html = "<p>Hi {{ firstName }}</p>" });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text}");
        Assert.Contains("did you mean 'first_name'?", JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("html")[0].GetString());

        // One saved before this check (written to the database here): its preview, with the field given as the API
        // names it (firstName, which is first_name), and an enrolment say which field was meant.
        var first = app.WithDb(db => db.SequenceSteps.Single(s => s.SequenceId == sequence && s.Position == 0).TemplateId);
        await app.WithDbAsync(async db =>
        {
            await db.Templates.Where(t => t.Id == first).ExecuteUpdateAsync(u => u.SetProperty(t => t.Html, "<p>Hi {{ firstName }}</p>"));
        });
        var preview = await PostAsync(user, $"/api/templates/{first}/preview", new { recipient = new { email = "kim@encom.test", firstName = "Kim", company = "Encom" } });
        Assert.Equal(["'firstName' is not a field this recipient has: did you mean 'first_name'?"], preview.GetProperty("errors").EnumerateArray().Select(e => e.GetString()));
        var report = await EnrolAsync(user, sequence, new { email = "kim@encom.test", firstName = "Kim", company = "Encom" });
        Assert.Contains("did you mean 'first_name'?", report.GetProperty("rejected")[0].GetProperty("errors")[0].GetString());
    }

    [Fact]
    public async Task Templates_and_sequences_with_errors_are_refused_by_field()
    {
        var user = await app.NewUserAsync();
        var other = await app.NewUserAsync();
        var theirs = await app.MailboxAsync(other);
        var bad = await user.Client.PostAsJsonAsync("/api/templates", new { name = "x", subject = "Hi {{ first_name", html = "<p>{{ x | shout }}</p>" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var errors = JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty("subject", out _));
        Assert.Contains("shout", errors.GetProperty("html")[0].GetString());

        var followUp = await TemplateAsync(user, "Follow-up only", "", "<p>Again</p>");
        var res = await user.Client.PostAsJsonAsync("/api/sequences", new
        {
            name = "", mailboxId = theirs, timeZone = "Mars/Base", autoReplyPauseDays = 0,
            steps = new object[] { new { templateId = followUp, windowStart = "18:00", windowEnd = "09:00" }, new { templateId = Guid.NewGuid() } },
        });
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        var e = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        foreach (var key in new[] { "name", "mailboxId", "timeZone", "autoReplyPauseDays", "steps" }) Assert.True(e.TryGetProperty(key, out _), key);
        var steps = string.Join(" ", e.GetProperty("steps").EnumerateArray().Select(x => x.GetString()));
        Assert.Contains("Step 2: no such template", steps);
        Assert.Contains("Step 1: the send window must end after it starts", steps);
    }

    [Fact]
    public async Task A_CSV_with_broken_rows_enrols_the_good_rows_and_reports_each_bad_one()
    {
        var (user, sequence, _) = await ThreeStepsAsync();
        var tag = Guid.NewGuid().ToString("N")[..6];
        await EnrolAsync(user, sequence, new { email = $"dup-{tag}@encom.test", firstName = "D", company = "E" });
        var csv = "email,first name,company,timezone\n" +
                  $"good-{tag}@encom.test,Good,Encom,Europe/Vienna\n" +
                  "not-an-address,X,Encom,UTC\n" +
                  $"nofirst-{tag}@encom.test,,Encom,UTC\n" +
                  $"zone-{tag}@encom.test,Z,Encom,Mars/Base\n" +
                  $"dup-{tag}@encom.test,D,Encom,UTC\n" +
                  $"good-{tag}@encom.test,Twice,Encom,UTC\n" +
                  $"\"quote-{tag}@encom.test,Q\"x,Encom,UTC\n" +
                  $"second-{tag}@encom.test,Second,Encom,\n";
        using var form = new MultipartFormDataContent { { new ByteArrayContent(Encoding.UTF8.GetBytes(csv)), "file", "people.csv" } };
        var res = await user.Client.PostAsync($"/api/sequences/{sequence}/enrolments/csv", form);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var report = JsonDocument.Parse(text).RootElement;
        Assert.Equal([$"good-{tag}@encom.test", $"second-{tag}@encom.test"], report.GetProperty("enrolled").EnumerateArray().Select(x => x.GetProperty("email").GetString()));
        var rejected = report.GetProperty("rejected").EnumerateArray().ToDictionary(r => r.GetProperty("row").GetInt32(), r => string.Join(" ", r.GetProperty("errors").EnumerateArray().Select(x => x.GetString())));
        Assert.Equal([3, 4, 5, 6, 7, 8], rejected.Keys.Order());
        Assert.Contains("not an email address", rejected[3]);
        Assert.Contains("'first_name' is empty", rejected[4]);
        Assert.Contains("not a time zone", rejected[5]);
        Assert.Contains("already enrolled", rejected[6]);
        Assert.Contains("also on row 2", rejected[7]);
        Assert.Contains("could not be read", rejected[8]);
        // Sequence's zone for a row without one.
        Assert.Equal(Vienna, Enrolment(sequence, $"second-{tag}@encom.test").TimeZone);

        // Not a CSV at all, or no email column: a problem saying so, nothing enrolled.
        var binary = await user.Client.PostAsync($"/api/sequences/{sequence}/enrolments/csv", new ByteArrayContent([0x50, 0x4b, 0x03, 0x04, 0, 0, 1]));
        Assert.Equal(HttpStatusCode.BadRequest, binary.StatusCode);
        var noEmail = await user.Client.PostAsync($"/api/sequences/{sequence}/enrolments/csv", new StringContent("name\nSam\n", Encoding.UTF8, "text/csv"));
        Assert.Contains("No column is named email", await noEmail.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_CSV_saved_by_Excel_in_Windows_1252_is_enrolled_with_its_accents_through_the_API_and_the_page()
    {
        // Read as UTF-8, "J\xE9r\xF4me" was stored as "J\uFFFDr\uFFFDme".
        const string Password = "Correct-horse-battery-9";
        var (user, sequence, _) = await ThreeStepsAsync(password: Password);
        var tag = Guid.NewGuid().ToString("N")[..6];
        byte[] Ansi(string who) => [.. Encoding.ASCII.GetBytes($"email,first name,company\n{who}-{tag}@encom.test,J"), 0xE9, (byte)'r', 0xF4,
            .. "me,Soci"u8, 0xE9, .. "t"u8, 0xE9, (byte)'\n'];

        using (var form = new MultipartFormDataContent { { new ByteArrayContent(Ansi("form")), "file", "people.csv" } })
        {
            var res = await user.Client.PostAsync($"/api/sequences/{sequence}/enrolments/csv", form);
            Assert.True(res.StatusCode == HttpStatusCode.OK, await res.Content.ReadAsStringAsync());
        }
        var body = new ByteArrayContent(Ansi("body"));
        body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("text/csv");
        Assert.Equal(HttpStatusCode.OK, (await user.Client.PostAsync($"/api/sequences/{sequence}/enrolments/csv", body)).StatusCode);

        var web = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Equal(HttpStatusCode.Redirect, (await EmailTracking.Tests.Web.SignInTests.PostLoginAsync(web, new() { ["Email"] = user.Email, ["Password"] = Password })).StatusCode);
        var page = await web.GetStringAsync($"/sequences/{sequence}");
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        using (var form = new MultipartFormDataContent { { new StringContent(token), "__RequestVerificationToken" }, { new ByteArrayContent(Ansi("page")), "file", "people.csv" } })
        {
            var res = await web.PostAsync($"/sequences/{sequence}?handler=Csv", form);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        }

        foreach (var who in new[] { "form", "body", "page" })
        {
            var fields = JsonSerializer.Deserialize<Dictionary<string, string>>(Enrolment(sequence, $"{who}-{tag}@encom.test").Fields)!;
            Assert.Equal("Jérôme", fields["first_name"]);
            Assert.Equal("Société", fields["company"]);
        }
    }

    [Fact]
    public async Task A_suppression_of_a_domain_or_of_no_address_says_what_is_wrong_not_that_an_address_is_required()
    {
        var user = await app.NewUserAsync();
        foreach (var (address, says) in new[]
        {
            ("@x.com", "'@x.com' is not an email address: suppressions are for one address each, such as name@x.com. A whole domain cannot be suppressed; add each address."),
            ("x.com", "'x.com' is not an email address: suppressions are for one address each, such as name@x.com. A whole domain cannot be suppressed; add each address."),
            ("sam at encom", "'sam at encom' is not an email address."),
            ("", "An email address is required."),
        })
        {
            var problem = await PostAsync(user, "/api/suppressions", new { address }, HttpStatusCode.BadRequest);
            Assert.Equal(says, problem.GetProperty("errors").GetProperty("address")[0].GetString());
        }
        Assert.Empty((await user.Client.GetFromJsonAsync<JsonElement>("/api/suppressions")).EnumerateArray());
    }

    [Fact]
    public async Task Null_steps_and_recipients_are_refused_with_a_400_not_a_500()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync();
        var template = await TemplateAsync(user, "One", "Hi", "<p>Hi</p>");
        var res = await user.Client.PostAsync("/api/sequences", new StringContent(
            $$"""{"name":"N","mailboxId":"{{mailbox}}","steps":[null,{"templateId":"{{template}}"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Contains("Step 1", await res.Content.ReadAsStringAsync());
        res = await user.Client.PostAsync($"/api/sequences/{sequence}/enrolments", new StringContent(
            """{"recipients":[null,{"email":"kim@encom.test","firstName":"Kim","company":"Encom"}]}""", Encoding.UTF8, "application/json"));
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"{(int)res.StatusCode} {text}");
        var report = JsonDocument.Parse(text).RootElement;
        Assert.Equal(1, report.GetProperty("enrolled").GetArrayLength());
        Assert.Equal(1, report.GetProperty("rejected")[0].GetProperty("row").GetInt32());
    }

    [Fact]
    public async Task Another_teams_sequences_templates_and_enrolments_are_not_found()
    {
        var (owner, sequence, _) = await ThreeStepsAsync();
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(owner, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        var template = app.WithDb(db => db.Templates.First(t => t.UserId == owner.Id).Id);
        var enrolment = Enrolment(sequence, sam).Id;
        var stranger = await app.NewUserAsync();
        foreach (var url in new[] { $"/api/sequences/{sequence}", $"/api/sequences/{sequence}/enrolments", $"/api/templates/{template}" })
            Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.GetAsync(url)).StatusCode);
        foreach (var url in new[] { $"/api/sequences/{sequence}/pause", $"/api/enrolments/{enrolment}/stop", $"/api/templates/{template}/preview" })
            Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.PostAsJsonAsync(url, new { })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.PostAsJsonAsync($"/api/sequences/{sequence}/enrolments", new { recipients = new[] { new { email = "x@y.test" } } })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.DeleteAsync($"/api/templates/{template}")).StatusCode);
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, sam).State);

        // The owner cannot delete a template in use.
        Assert.Equal(HttpStatusCode.Conflict, (await owner.Client.DeleteAsync($"/api/templates/{template}")).StatusCode);
    }

    // ---- editing steps and enrolling again ----

    async Task<JsonElement> GetSequenceAsync(TestUser user, Guid sequence) => await user.Client.GetJsonAsync($"/api/sequences/{sequence}");

    async Task<HttpResponseMessage> PutStepsAsync(TestUser user, Guid sequence, Guid mailbox, IEnumerable<Guid> templates, string? timeZone = Vienna) =>
        await user.Client.PutAsJsonAsync($"/api/sequences/{sequence}", new
        {
            name = "Outreach", mailboxId = mailbox, timeZone, steps = templates.Select((t, i) => new { templateId = t, delayDays = i == 0 ? 0 : 2 }).ToArray(),
        }, TestApi.Json);

    [Fact]
    public async Task Steps_people_still_enrolled_have_had_cannot_be_removed_or_moved_and_the_steps_after_them_can_change()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        await DueAsync(sequence, sam);
        await DueAsync(sequence, sam);
        Assert.Equal(2, app.Transport.To(sam).Count);
        var ids = (await GetSequenceAsync(user, sequence)).GetProperty("steps").EnumerateArray().Select(x => x.GetProperty("templateId").GetGuid()).ToList();
        var other = await TemplateAsync(user, "Other", "One more thing", "<p>Another last word, {{ first_name }}.</p>");

        // Sam has had steps 1 and 2: removing step 2 would skip the last step (it would become step 2, "sent"), and a
        // step put in first would send step 1 again.
        foreach (var steps in new[] { [ids[0], ids[2]], [other, ids[0], ids[1], ids[2]], [ids[0], ids[2], ids[1]], new List<Guid> { ids[0], other, ids[2] } })
        {
            var res = await PutStepsAsync(user, sequence, mailbox, steps);
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, text);
            Assert.True(text.Contains("cannot be removed, moved or given another template: 1 person still enrolled has had it", StringComparison.Ordinal), text);
        }
        Assert.Equal(ids, (await GetSequenceAsync(user, sequence)).GetProperty("steps").EnumerateArray().Select(x => x.GetProperty("templateId").GetGuid()));

        // The step not reached yet can be replaced, and a step added after it.
        var res2 = await PutStepsAsync(user, sequence, mailbox, [ids[0], ids[1], other, ids[2]]);
        Assert.True(res2.IsSuccessStatusCode, await res2.Content.ReadAsStringAsync());
        await DueAsync(sequence, sam);
        await DueAsync(sequence, sam);
        var mails = app.Transport.To(sam);
        Assert.Equal(4, mails.Count);
        Assert.Contains("Another last word", mails[2].HtmlBody);
        Assert.Contains("Last one", mails[3].HtmlBody);
        Assert.Equal(EnrolmentState.Completed, Enrolment(sequence, sam).State);

        // Nobody is enrolled any more: the steps may change as the user likes.
        var res3 = await PutStepsAsync(user, sequence, mailbox, [other]);
        Assert.True(res3.IsSuccessStatusCode, await res3.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_change_that_leaves_out_the_time_zone_keeps_the_sequences_zone()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync();
        var ids = (await GetSequenceAsync(user, sequence)).GetProperty("steps").EnumerateArray().Select(x => x.GetProperty("templateId").GetGuid()).ToList();
        var res = await PutStepsAsync(user, sequence, mailbox, ids, timeZone: null);
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
        Assert.Equal(Vienna, (await GetSequenceAsync(user, sequence)).GetProperty("timeZone").GetString());
        res = await PutStepsAsync(user, sequence, mailbox, ids, timeZone: "America/New_York");
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
        Assert.Equal("America/New_York", (await GetSequenceAsync(user, sequence)).GetProperty("timeZone").GetString());
    }

    [Fact]
    public async Task An_enrolment_stopped_by_a_removed_mailbox_or_by_hand_goes_on_when_enrolled_again_and_one_that_was_answered_does_not()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var sam = $"sam-{tag}@encom.test";
        var alan = $"alan-{tag}@encom.test";
        var lora = $"lora-{tag}@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = alan, firstName = "Alan", company = "Encom" },
            new { email = lora, firstName = "Lora", company = "Encom" });
        await DueAsync(sequence, sam, alan, lora);
        Assert.Single(app.Transport.To(sam));

        // Lora answers; Alan is stopped by hand; then the mailbox is removed, and Sam's next step stops for it.
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, lora).Id)[0], lora, EventKind.Reply);
        await app.PassAsync();
        var stop = await user.Client.PostAsync($"/api/enrolments/{Enrolment(sequence, alan).Id}/stop", null);
        Assert.True(stop.IsSuccessStatusCode);
        Assert.True((await user.Client.DeleteAsync($"/api/mailboxes/{mailbox}")).IsSuccessStatusCode);
        await DueAsync(sequence, sam);
        var stopped = Enrolment(sequence, sam);
        Assert.Equal(StopReason.Failed, stopped.StopReason);
        Assert.Contains("enrol again", stopped.Note);

        // As the note says: another mailbox, and the address enrolled again.
        var other = await app.MailboxAsync(user);
        var ids = (await GetSequenceAsync(user, sequence)).GetProperty("steps").EnumerateArray().Select(x => x.GetProperty("templateId").GetGuid()).ToList();
        var put = await PutStepsAsync(user, sequence, other, ids);
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        var report = await EnrolAsync(user, sequence, new { email = sam, firstName = "Samuel", company = "Encom" }, new { email = alan, firstName = "Alan", company = "Encom" },
            new { email = lora, firstName = "Lora", company = "Encom" });
        Assert.Equal([sam, alan], report.GetProperty("enrolled").EnumerateArray().Select(r => r.GetProperty("email").GetString()));
        var refused = Assert.Single(report.GetProperty("rejected").EnumerateArray());
        Assert.Contains($"{lora} was enrolled in this sequence before and stopped (they answered)", refused.GetProperty("errors")[0].GetString());

        var again = Enrolment(sequence, sam);
        Assert.Equal(EnrolmentState.Active, again.State);
        Assert.Equal(StopReason.None, again.StopReason);
        Assert.Equal(1, again.NextStep);
        Assert.Contains("goes on from step 2", again.Note);
        await DueAsync(sequence, sam, alan);
        // Step 2 once each, through the new mailbox, with the fields given when enrolled again; step 1 not again.
        Assert.Equal(2, app.Transport.To(sam).Count);
        Assert.Contains("Samuel, did you see my note?", app.Transport.To(sam)[1].HtmlBody);
        Assert.Equal(2, app.Transport.To(alan).Count);
        Assert.Single(app.Transport.To(lora));
        Assert.Equal(other, Sends(again.Id)[1].MailboxId);

        // One that is going on, or has had every step, is not enrolled twice.
        var twice = await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        Assert.Contains("is already enrolled in this sequence", twice.GetProperty("rejected")[0].GetProperty("errors")[0].GetString());
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task An_enrolment_enrolled_again_after_failing_its_tries_gets_its_tries_again()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var o = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value;
        var kim = $"kim-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = kim, firstName = "Kim", company = "Encom" });
        app.Transport.RefuseForNow[kim] = 1000;
        for (var i = 0; i < o.MaxAttempts + 2 && Enrolment(sequence, kim).State == EnrolmentState.Active; i++) await DueAsync(sequence, kim);
        var e = Enrolment(sequence, kim);
        Assert.Equal(StopReason.Failed, e.StopReason);
        Assert.Contains($"failed {o.MaxAttempts} times", e.Note);

        // The recipient's server is fixed, and the user enrols Kim again, as the stop allows: one more refusal for now
        // (greylisting) is the first of a fresh count, not one too many.
        app.Transport.RefuseForNow[kim] = 1;
        Assert.Single((await EnrolAsync(user, sequence, new { email = kim, firstName = "Kim", company = "Encom" })).GetProperty("enrolled").EnumerateArray());
        await DueAsync(sequence, kim);
        e = Enrolment(sequence, kim);
        Assert.True(e.State == EnrolmentState.Active, $"one refusal after enrolling again: {e.State} {e.StopReason}: {e.Note}");
        Assert.Equal(1, Assert.Single(Sends(e.Id)).Attempts);
        await DueAsync(sequence, kim);
        Assert.Single(app.Transport.To(kim));
        Assert.Equal(1, Enrolment(sequence, kim).NextStep);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task A_step_that_may_or_may_not_have_left_is_sent_again_once_the_address_is_enrolled_again()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        var (e, intent) = await InterruptedAndUnsureAsync(sequence, sam);
        Assert.Equal(StopReason.Failed, e.StopReason);
        Assert.Contains("if it is not there, enrol the address again", e.Note);

        // The user found it not in Sent and enrols the address again: the step is prepared afresh and goes once.
        var report = await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" });
        Assert.Single(report.GetProperty("enrolled").EnumerateArray());
        var taken = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Failed, taken.State);
        Assert.Contains("taken as not sent", taken.Error);
        await DueAsync(sequence, sam);
        Assert.Single(app.Transport.To(sam));
        var sent = Assert.Single(Sends(e.Id));
        Assert.Equal(SequenceSendState.Sent, sent.State);
        Assert.NotEqual(intent.TrackedMessageId, sent.TrackedMessageId);
        Assert.Equal(1, Enrolment(sequence, sam).NextStep);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task An_auto_reply_whose_return_date_has_passed_does_not_pause_the_sequence()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var alan = $"alan-{Guid.NewGuid():N}"[..13] + "@encom.test";
        await EnrolAsync(user, sequence, new { email = alan, firstName = "Alan", company = "Encom" });
        await DueAsync(sequence, alan);
        var e = Enrolment(sequence, alan);
        var due = e.NextAt;
        // "Out until" two days ago: they are back (the notice was left on, or read late). The next step keeps its time.
        var past = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime).AddDays(-2);
        await AnswerAsync(mailbox, Sends(e.Id)[0], alan, EventKind.AutoReply, returnDate: past);
        await app.PassAsync();
        e = Enrolment(sequence, alan);
        Assert.Equal(EnrolmentState.Active, e.State);
        Assert.Null(e.PausedUntil);
        Assert.Equal(due, e.NextAt);
        Assert.Contains("which has passed; the sequence goes on", e.Note);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task An_icloud_auto_reply_ending_in_year_9999_pauses_for_the_default_and_every_other_sequence_goes_on()
    {
        // Anyone a sequence writes to can send this. Its date used to fail every pass of the scheduler, for every team.
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var sam = $"sam-{tag}@encom.test";
        var kai = $"kai-{tag}@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = kai, firstName = "Kai", company = "Encom" });
        await DueAsync(sequence, sam, kai);
        // Sam's notice has no start date; Kai's starts at 15:00 UTC (an owner in UTC+9), by which its end is moved.
        foreach (var (who, start) in new[] { (sam, ""), (kai, "startDate=2026-12-01T15:00:00Z,") })
        {
            var step1 = Assert.Single(app.Transport.To(who));
            var robot = Answer(who, user, "Auto reply: " + step1.Subject, step1.MessageId!, [step1.MessageId!], "I'm only sleeping.");
            robot.Headers.Add("Auto-Submitted", "auto-replied");
            robot.Headers.Add("X-Apple-Criteria", $"{{kind=VACATION,{start}endDate=9999-12-31T23:59:59Z}}");
            robot.Headers.Add("X-Apple-Action", "VACATION");
            var result = await HandleAsync(mailbox, robot);
            Assert.Equal((InboundOutcome.Recorded, EventKind.AutoReply), (result.Outcome, result.Kind));
            Assert.Null(app.WithDb(db => db.InboundMessages.Single(i => i.InternetMessageId == robot.MessageId).ReturnDate));
        }

        // Another team's sequence, due now.
        var (other, otherSequence, _) = await ThreeStepsAsync(window: "00:00");
        var lee = $"lee-{tag}@other.test";
        await EnrolAsync(other, otherSequence, new { email = lee, firstName = "Lee", company = "Other" });
        At(Enrolment(otherSequence, lee).NextAt!.Value);
        var applied = app.Clock.GetUtcNow();
        await app.PassAsync();
        Assert.Single(app.Transport.To(lee));
        foreach (var who in new[] { sam, kai })
        {
            var e = Enrolment(sequence, who);
            Assert.Equal((EnrolmentState.Paused, applied.AddDays(5)), (e.State, e.PausedUntil));
            Assert.Contains("without a return date", e.Note);
        }
        await LeaveNoOneDueAsync(user, sequence);
        await LeaveNoOneDueAsync(other, otherSequence);
    }

    [Fact]
    public async Task A_return_date_years_away_pauses_for_a_year_at_most_and_an_answer_that_cannot_be_applied_stops_only_its_enrolment()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var sam = $"sam-{tag}@encom.test";
        var kai = $"kai-{tag}@encom.test";
        var ned = $"ned-{tag}@encom.test";
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = kai, firstName = "Kai", company = "Encom" },
            new { email = ned, firstName = "Ned", company = "Encom" });
        await DueAsync(sequence, sam, kai, ned);
        // The last day there is (stored before the classifier refused such years), and a sabbatical's date.
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, sam).Id)[0], sam, EventKind.AutoReply, returnDate: DateOnly.MaxValue, returnDateOffsetMinutes: 840);
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, kai).Id)[0], kai, EventKind.AutoReply, returnDate: new DateOnly(2199, 12, 31));
        // A row no mail gives (no clock is 2,000 hours off UTC): applying it fails, whatever else a broken row may hold.
        await AnswerAsync(mailbox, Sends(Enrolment(sequence, ned).Id)[0], ned, EventKind.AutoReply,
            returnDate: DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime).AddDays(3), returnDateOffsetMinutes: 120_000);

        var (other, otherSequence, _) = await ThreeStepsAsync(window: "00:00");
        var lee = $"lee-{tag}@other.test";
        await EnrolAsync(other, otherSequence, new { email = lee, firstName = "Lee", company = "Other" });
        At(Enrolment(otherSequence, lee).NextAt!.Value);
        var today = DateOnly.FromDateTime(app.Clock.GetUtcNow().UtcDateTime);
        await app.PassAsync();
        Assert.Single(app.Transport.To(lee));
        // Back, as far as the sequence is concerned, a year from today: it goes on the day after, at the window's opening.
        var resume = SendTimes.ToInstant(today.AddDays(SequenceRunner.LongestPauseDays + 1), new TimeOnly(9, 0), SendTimes.Zone(Vienna)!);
        foreach (var who in new[] { sam, kai })
        {
            var e = Enrolment(sequence, who);
            Assert.Equal((EnrolmentState.Paused, resume), (e.State, e.PausedUntil));
            Assert.Contains("the longest pause", e.Note);
        }
        // Passed over: Ned's enrolment stops saying why (an answer not applied may be a person's), and the passes go on.
        var n = Enrolment(sequence, ned);
        Assert.Equal((EnrolmentState.Stopped, StopReason.Failed), (n.State, n.StopReason));
        Assert.Contains("could not be applied", n.Note);
        Assert.Equal(app.WithDb(db => db.InboundMessages.Where(i => i.FromAddress == ned).Max(i => i.Id)), n.InboundSeen);
        await app.PassAsync();
        await LeaveNoOneDueAsync(user, sequence);
        await LeaveNoOneDueAsync(other, otherSequence);
    }

    [Fact]
    public async Task A_follow_up_answering_a_first_subject_at_the_length_limit_is_sent_without_a_Re_it_has_no_room_for()
    {
        var user = await app.NewUserAsync();
        var mailbox = await app.MailboxAsync(user);
        var long_ = new string('x', 1000);
        var first = await TemplateAsync(user, "Long", long_, "<p>Hi</p>");
        var second = await TemplateAsync(user, "Follow", "", "<p>Again</p>");
        var seq = (await PostAsync(user, "/api/sequences", new
        {
            name = "Long", mailboxId = mailbox, timeZone = Vienna,
            steps = new object[] { new { templateId = first, delayDays = 0, windowStart = "00:00", windowEnd = "23:59" }, new { templateId = second, delayDays = 1, windowStart = "00:00", windowEnd = "23:59" } },
        }, HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var sam = $"sam-{Guid.NewGuid():N}"[..12] + "@encom.test";
        await EnrolAsync(user, seq, new { email = sam });
        await DueAsync(seq, sam);
        await DueAsync(seq, sam);
        var mails = app.Transport.To(sam);
        Assert.Equal(2, mails.Count);
        Assert.Equal(long_, mails[1].Subject);
        Assert.Equal(EnrolmentState.Completed, Enrolment(seq, sam).State);

        // A subject that only the row's fields make too long is refused when enrolling, not at every send.
        var fielded = await TemplateAsync(user, "Fielded", new string('y', 985) + "{{ company }}", "<p>Hi</p>");
        var seq2 = (await PostAsync(user, "/api/sequences", new { name = "Fielded", mailboxId = mailbox, timeZone = Vienna, steps = new object[] { new { templateId = fielded } } },
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var report = await EnrolAsync(user, seq2, new { email = sam, company = "Encom International" }, new { email = "lora@encom.test", company = "Encom" });
        Assert.Contains("its subject is longer than 1000 characters", report.GetProperty("rejected")[0].GetProperty("errors")[0].GetString());
        Assert.Single(report.GetProperty("enrolled").EnumerateArray());
        await LeaveNoOneDueAsync(user, seq2);
    }

    [Fact]
    public async Task An_enrolment_whose_lease_ran_out_while_its_batch_was_worked_is_left_to_the_next_pass()
    {
        var (user, sequence, _) = await ThreeStepsAsync(window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var (sam, kev) = ($"sam-{tag}@encom.test", $"kev-{tag}@encom.test");
        await EnrolAsync(user, sequence, new { email = sam, firstName = "Sam", company = "Encom" }, new { email = kev, firstName = "Kev", company = "Encom" });
        // Both are claimed in one batch. Sending to the first of them takes longer than the lease (a slow server): by the
        // time this pass comes to the second, another instance may have claimed them and be sending their step.
        var lease = app.Services.GetRequiredService<IOptions<SequenceOptions>>().Value.Lease;
        var first = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Func<Task> Slow(string who) => () =>
        {
            if (first.TrySetResult(who)) app.Clock.Advance(lease + TimeSpan.FromSeconds(1));
            return Task.CompletedTask;
        };
        app.Transport.WhileSending[sam] = Slow(sam);
        app.Transport.WhileSending[kev] = Slow(kev);
        await DueAsync(sequence, sam, kev);
        var sent = await first.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var left = sent == sam ? kev : sam;
        app.Transport.WhileSending.TryRemove(left, out _);
        Assert.Single(app.Transport.To(sent));
        Assert.Empty(app.Transport.To(left));
        var waiting = Enrolment(sequence, left);
        Assert.Equal(0, waiting.NextStep);
        Assert.Equal("test-instance", waiting.LeaseOwner);
        // The next pass (here or on another instance) takes it over and sends its step once.
        await app.PassAsync("other-instance");
        Assert.Single(app.Transport.To(left));
        Assert.Equal(1, Enrolment(sequence, left).NextStep);
        await LeaveNoOneDueAsync(user, sequence);
    }

    [Fact]
    public async Task A_reply_never_stops_colleagues_at_national_free_mail_providers()
    {
        var (user, sequence, mailbox) = await ThreeStepsAsync(stopCompany: true, window: "00:00");
        var tag = Guid.NewGuid().ToString("N")[..6];
        foreach (var domain in new[] { "yahoo.co.uk", "hotmail.fr", "t-online.de", "qq.com", "comcast.net" })
        {
            string A(string who) => $"{who}-{tag}@{domain}";
            await EnrolAsync(user, sequence, new { email = A("ann"), firstName = "Ann", company = "A" }, new { email = A("bob"), firstName = "Bob", company = "B" });
            await DueAsync(sequence, A("ann"));
            await AnswerAsync(mailbox, Sends(Enrolment(sequence, A("ann")).Id)[0], A("ann"), EventKind.Reply);
            await app.PassAsync();
            Assert.Equal(StopReason.Replied, Enrolment(sequence, A("ann")).StopReason);
            Assert.Equal(EnrolmentState.Active, Enrolment(sequence, A("bob")).State);
        }
        await LeaveNoOneDueAsync(user, sequence);
    }
}

public sealed class SequencesOnSqlite(SequenceSqliteApp app) : SequenceTests(app), IClassFixture<SequenceSqliteApp>;

public sealed class SequencesOnPostgres(SequencePostgresApp app) : SequenceTests(app), IClassFixture<SequencePostgresApp>;

static class TimeExtensions
{
    public static DateTimeOffset Max(this DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;
}
