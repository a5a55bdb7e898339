using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EmailTracking.Tests.Tracking;

/// <summary>
/// A server whose scanner window is five minutes, so that a click sent right after the send time is recorded falls in
/// it however busy the machine.
/// </summary>
public sealed class WideScannerWindowApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(Microsoft.AspNetCore.Hosting.IWebHostBuilder builder) =>
        builder.UseSetting("Tracking:Classifier:ScannerClickWindow", "00:05:00");
}

/// <summary>
/// The send time a copy found in the Sent folder records comes from the sent mail's Date, the sender's mail client's
/// clock. Timing rules measure from it, so a clock ahead or behind must not make people's clicks a scanner's, or a
/// scanner's a person's.
/// </summary>
public sealed class SentFolderSendTimeTests(WideScannerWindowApp app) : IClassFixture<WideScannerWindowApp>
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

    /// <summary>A message registered now (not yet sent), found in Sent with the given Date; answers the registration.</summary>
    async Task<(JsonElement Reg, TestUser User)> FoundInSentAsync(DateTimeOffset date)
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new
        {
            from = user.Email, subject = "Proposal", to = new[] { "alan@encom.test" },
            html = "<p>Hi <a href=\"https://example.com/pricing\">pricing</a></p>",
        });
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });
        var sent = new MimeMessage();
        sent.From.Add(MailboxAddress.Parse(user.Email));
        sent.To.Add(MailboxAddress.Parse("alan@encom.test"));
        sent.Subject = "Proposal";
        sent.MessageId = $"{Guid.NewGuid():N}@client.test";
        sent.Date = date;
        sent.Body = new TextPart("html") { Text = reg.GetProperty("copies")[0].GetProperty("html").GetString()! };
        using (var scope = app.Services.CreateScope())
        {
            var found = await scope.ServiceProvider.GetRequiredService<SentMailScanner>().HandleAsync(mailbox, sent, null, CancellationToken.None);
            Assert.Equal(InboundOutcome.Recorded, found.Outcome);
        }
        return (reg, user);
    }

    async Task<TrackingEvent> ClickAsync(JsonElement reg)
    {
        var link = reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!;
        using var res = await app.Anonymous(Chrome).GetAsync(TestApi.Path(link));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var id = reg.GetProperty("id").GetGuid();
        return app.WithDb(db => db.Events.AsNoTracking().Single(e => e.TrackedMessageId == id));
    }

    [Fact]
    public async Task A_sent_mail_dated_ahead_of_the_servers_clock_is_taken_as_sent_now()
    {
        var (reg, _) = await FoundInSentAsync(DateTimeOffset.UtcNow.AddHours(1));
        var id = reg.GetProperty("id").GetGuid();
        var sentAt = app.WithDb(db => db.Messages.Single(m => m.Id == id).SentAt);
        Assert.NotNull(sentAt);
        Assert.True(sentAt <= DateTimeOffset.UtcNow, $"the send time {sentAt:O} is in the future");
        // Not "clicked before the recorded send time": the scanner window's own rule, measured from now.
        var click = await ClickAsync(reg);
        Assert.DoesNotContain("before the recorded send time", click.Reason);
        Assert.Contains("after sending", click.Reason);
    }

    [Fact]
    public async Task A_sent_mail_dated_before_its_registration_is_taken_as_sent_when_registered()
    {
        var (reg, _) = await FoundInSentAsync(DateTimeOffset.UtcNow.AddDays(-1));
        var id = reg.GetProperty("id").GetGuid();
        var message = app.WithDb(db => db.Messages.Single(m => m.Id == id));
        Assert.Equal(message.CreatedAt, message.SentAt);
        // A gateway's click on delivery is within the scanner window of that, not a day after "sending".
        var click = await ClickAsync(reg);
        Assert.Equal(Verdict.Scanner, click.Verdict);
    }
}
