using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Sequences;
using EmailTracking.Tests.Infrastructure;
using MailKit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace EmailTracking.Tests.Mail;

/// <summary>The server with sequence time on a fake clock and the scheduler's passes run by the test; mail is real.</summary>
public sealed class SequenceMailApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override void Configure(IWebHostBuilder builder)
    {
        builder.UseSetting("Sequences:Enabled", "false");
        builder.UseSetting("Sequences:MinSpacing", "00:00:00");
        builder.ConfigureServices(s => s.AddKeyedSingleton<TimeProvider>(SequenceOptions.ClockKey, Clock));
    }

    public async Task PassAsync()
    {
        using var scope = Services.CreateScope();
        await scope.ServiceProvider.GetRequiredService<SequenceRunner>().RunOnceAsync("test", "http://localhost", CancellationToken.None);
    }
}

/// <summary>
/// Sequences through real Postfix and Dovecot: steps leave over SMTP with our Message-IDs, people and robots answer,
/// the IMAP watcher records the answers, and the scheduler stops, pauses or goes on.
/// </summary>
[Collection(MailCollection.Name)]
public sealed class SequenceLoopTests(SequenceMailApp app) : IClassFixture<SequenceMailApp>
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    async Task<(TestUser User, string Address, Guid Sequence)> SequenceAsync()
    {
        var user = await app.NewUserAsync();
        var address = MailServer.UniqueSender().Address;
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address })).IsSuccessStatusCode);
        var connect = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address, username = MailServer.Sender, password = MailServer.Password,
            imap = new { host = MailServer.ImapHost, port = MailServer.ImapPort, security = "none" },
            smtp = new { host = MailServer.SmtpHost, port = MailServer.SmtpPort, security = "none" },
        }, TestApi.Json);
        var connected = await connect.Content.ReadAsStringAsync();
        Assert.True(connect.StatusCode == HttpStatusCode.Created, connected);
        var mailbox = JsonDocument.Parse(connected).RootElement.GetProperty("id").GetGuid();
        async Task<Guid> Template(string name, string subject, string html)
        {
            var res = await user.Client.PostAsJsonAsync("/api/templates", new { name, subject, html });
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.Created, text);
            return JsonDocument.Parse(text).RootElement.GetProperty("id").GetGuid();
        }
        var subject = MailServer.UniqueSubject("Grid for {{ company }}");
        var t1 = await Template("Intro", subject, "<p>Hi {{ first_name }}, here is <a href=\"https://encom.test/grid\">the grid</a>.</p>");
        var t2 = await Template("Nudge", "", "<p>{{ first_name }}, any thoughts?</p>");
        var t3 = await Template("Last", "", "<p>Last note, {{ first_name }}.</p>");
        var res = await user.Client.PostAsJsonAsync("/api/sequences", new
        {
            name = "Loop", mailboxId = mailbox, timeZone = "UTC",
            steps = new object[]
            {
                new { templateId = t1, delayDays = 0, businessDaysOnly = false, windowStart = "00:00", windowEnd = "23:59" },
                new { templateId = t2, delayDays = 2, businessDaysOnly = false, windowStart = "00:00", windowEnd = "23:59" },
                new { templateId = t3, delayDays = 3, businessDaysOnly = false, windowStart = "00:00", windowEnd = "23:59" },
            },
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        return (user, address, JsonDocument.Parse(text).RootElement.GetProperty("id").GetGuid());
    }

    async Task EnrolAsync(TestUser user, Guid sequence, string email, string firstName)
    {
        var res = await user.Client.PostAsJsonAsync($"/api/sequences/{sequence}/enrolments", new { recipients = new[] { new { email, firstName, company = "Partner" } } });
        var report = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.True(report.GetProperty("enrolled").GetArrayLength() == 1, report.ToString());
    }

    Enrolment Enrolment(Guid sequence, string address) => app.WithDb(db => db.Enrolments.Single(e => e.SequenceId == sequence && e.Address == address));

    List<SequenceSend> Sends(Guid sequence, string address)
    {
        var id = Enrolment(sequence, address).Id;
        return app.WithDb(db => db.SequenceSends.Where(s => s.EnrolmentId == id).OrderBy(s => s.Step).ToList());
    }

    /// <summary>Passes until the condition holds (the IMAP watcher records answers as they arrive).</summary>
    async Task PassUntilAsync(Func<bool> done, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            await app.PassAsync();
            if (done()) return;
            Assert.True(DateTime.UtcNow < deadline, $"{what} did not happen\n{MailServer.PostfixLogTail()}");
            await Task.Delay(300);
        }
    }

    void Advance(DateTimeOffset to)
    {
        var now = app.Clock.GetUtcNow();
        if (to > now) app.Clock.Advance(to - now);
    }

    [Fact]
    public async Task A_colleague_the_recipient_copied_answers_step_one_and_step_two_never_goes()
    {
        var (user, sender, sequence) = await SequenceAsync();
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var carol = MailServer.Address(MailServer.Carol, MailServer.PartnerDomain).Address;
        await EnrolAsync(user, sequence, bob, "Bob");
        await PassUntilAsync(() => Sends(sequence, bob).Any(s => s.State == SequenceSendState.Sent), "step 1");
        var step1 = Sends(sequence, bob)[0];
        var received = await MailServer.WaitForMessageIdAsync(MailServer.Bob, step1.MessageIdHeader);
        Assert.Contains("Hi Bob", received.HtmlBody);
        Assert.Contains("/u/", received.HtmlBody); // the unsubscribe link

        // Bob passes it on to Carol with a note, copying her; Carol answers the sender herself.
        var pass = new MimeMessage { MessageId = MailServer.NewMessageId(), Subject = "Fwd: " + received.Subject, Date = DateTimeOffset.Now };
        pass.From.Add(MailboxAddress.Parse(bob));
        pass.To.Add(MailboxAddress.Parse(sender));
        pass.Cc.Add(MailboxAddress.Parse(carol));
        pass.InReplyTo = received.MessageId;
        pass.References.Add(received.MessageId!);
        pass.Body = new TextPart("plain") { Text = "Carol handles this; copying her.\n\n> " + received.TextBody?.Split('\n')[0] };
        await MailServer.SendAsync(pass);
        var carolsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Carol, pass.MessageId);
        await MailServer.SendAsync(MailServer.Answer(carolsCopy, carol, sender, "Happy to talk next week — Carol"));

        await PassUntilAsync(() => Enrolment(sequence, bob).State == EnrolmentState.Stopped, "the stop on a person's reply");
        var e = Enrolment(sequence, bob);
        Assert.Equal(StopReason.Replied, e.StopReason);
        // The step 2 time comes and goes: nothing is sent.
        Advance(app.Clock.GetUtcNow().AddDays(10));
        await app.PassAsync();
        Assert.Single(Sends(sequence, bob));
        using var imap = await MailServer.ConnectImapAsync(MailServer.Bob);
        await imap.Inbox.OpenAsync(FolderAccess.ReadOnly);
        Assert.Single(await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", step1.MessageIdHeader)));
        Assert.Empty(await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.SubjectContains("Re: " + received.Subject)));
    }

    [Fact]
    public async Task An_out_of_office_robot_pauses_the_enrolment_until_after_its_return_date_then_the_sequence_resumes()
    {
        var (user, _, sequence) = await SequenceAsync();
        var robot = MailServer.Address(MailServer.Robot, MailServer.PartnerDomain).Address;
        await EnrolAsync(user, sequence, robot, "Robbie");
        await PassUntilAsync(() => Sends(sequence, robot).Any(s => s.State == SequenceSendState.Sent), "step 1");
        await PassUntilAsync(() => Enrolment(sequence, robot).State == EnrolmentState.Paused, "the pause on the robot's answer");
        var e = Enrolment(sequence, robot);
        var resume = new DateTimeOffset(MailServer.RobotReturn.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        Assert.Equal(resume, e.PausedUntil);
        Assert.Contains(MailServer.RobotReturn.ToString("yyyy-MM-dd"), e.Note);

        // Step 2 would be due two days after step 1; the pause holds it until the day after the return date.
        Advance(resume.AddMinutes(-1));
        await app.PassAsync();
        Assert.Single(Sends(sequence, robot));
        Advance(resume);
        await PassUntilAsync(() => Sends(sequence, robot).Count == 2 && Sends(sequence, robot)[1].State == SequenceSendState.Sent, "step 2 after the pause");
        var step2 = Sends(sequence, robot)[1];
        var arrived = await MailServer.WaitForMessageIdAsync(MailServer.Robot, step2.MessageIdHeader);
        Assert.Equal(Sends(sequence, robot)[0].MessageIdHeader, arrived.InReplyTo);
        Assert.Equal(EnrolmentState.Active, Enrolment(sequence, robot).State);
    }

    [Fact]
    public async Task A_bounce_stops_the_enrolment_and_suppresses_the_address_for_the_team()
    {
        var (user, _, sequence) = await SequenceAsync();
        var nobody = MailServer.UnknownUser(MailServer.PartnerDomain).Address;
        await EnrolAsync(user, sequence, nobody, "Nobody");
        await PassUntilAsync(() => Sends(sequence, nobody).Any(s => s.State == SequenceSendState.Sent), "step 1");
        await PassUntilAsync(() => Enrolment(sequence, nobody).State == EnrolmentState.Stopped, "the stop on the bounce");
        var e = Enrolment(sequence, nobody);
        Assert.Equal(StopReason.Bounced, e.StopReason);
        Assert.Contains("5.1.1", e.Note);
        Assert.Equal(SuppressionReason.Bounced, app.WithDb(db => db.Suppressions.Single(s => s.TeamId == user.TeamId && s.Address == nobody)).Reason);
        Advance(app.Clock.GetUtcNow().AddDays(10));
        await app.PassAsync();
        Assert.Single(Sends(sequence, nobody));
    }
}
