using EmailTracking.Tests.Infrastructure;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Search;
using MimeKit;

namespace EmailTracking.Tests.Mail;

/// <summary>
/// The local Postfix + Dovecot loop that test.sh starts does what the reply-tracking tests will lean on: delivery with
/// our Message-ID intact, real DSN bounces, a real out-of-office robot, and IMAP IDLE.
/// </summary>
[Collection(MailCollection.Name)]
public sealed class MailLoopTests
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Mail_sent_over_SMTP_arrives_over_IMAP_with_its_Message_ID()
    {
        var sent = MailServer.NewMessage(MailServer.Address(MailServer.Sender),
            MailServer.Address(MailServer.Alice), MailServer.UniqueSubject("Proposal"), "Please find our proposal.");
        var id = sent.MessageId!;

        await MailServer.SendAsync(sent, authenticateAs: MailServer.Sender);

        var received = await MailServer.WaitForMessageIdAsync(MailServer.Alice, id, Patience);
        Assert.Equal(id, received.MessageId);
        Assert.Equal(sent.Subject, received.Subject);
        Assert.Equal($"{MailServer.Sender}@{MailServer.Domain}", received.From.Mailboxes.Single().Address);
        Assert.Contains("Please find our proposal.", received.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mail_to_an_unknown_user_comes_back_as_a_DSN_carrying_the_original_Message_ID()
    {
        var nobody = MailServer.UnknownUser(MailServer.PartnerDomain);
        var sent = MailServer.NewMessage(MailServer.Address(MailServer.Sender), nobody, MailServer.UniqueSubject("Intro"));
        var id = sent.MessageId!;

        await MailServer.SendAsync(sent);

        var bounce = await MailServer.WaitForMessageAsync(MailServer.Sender, SearchQuery.All,
            m => m.Body is MultipartReport && Original(m)?.MessageId == id,
            $"a DSN for <{id}>", Patience);

        var report = Assert.IsType<MultipartReport>(bounce.Body);
        Assert.Equal("delivery-status", report.ReportType);
        Assert.Equal("auto-replied", bounce.Headers[HeaderId.AutoSubmitted]);
        var status = Assert.Single(report.OfType<MessageDeliveryStatus>());
        var recipient = status.StatusGroups.Skip(1).Single(); // the first group is about the message, then one per recipient
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("5.1.1", recipient["Status"]);
        Assert.Contains(nobody.Address, recipient["Final-Recipient"], StringComparison.OrdinalIgnoreCase);
        Assert.Equal(sent.Subject, Original(bounce)!.Subject);
    }

    [Fact]
    public async Task The_robot_answers_with_an_RFC_3834_auto_reply_and_keeps_the_original()
    {
        // A sender of its own: the robot answers each sender once a day.
        var from = MailServer.UniqueSender();
        var robot = MailServer.Address(MailServer.Robot, MailServer.PartnerDomain);
        var subject = MailServer.UniqueSubject("Follow-up");
        var sent = MailServer.NewMessage(from, robot, subject);
        var id = sent.MessageId!;

        await MailServer.SendAsync(sent);

        var reply = await MailServer.WaitForMessageAsync(MailServer.Sender, SearchQuery.HeaderContains("In-Reply-To", id),
            m => m.InReplyTo == id, $"In-Reply-To <{id}>", Patience);
        Assert.StartsWith("auto-replied", reply.Headers[HeaderId.AutoSubmitted], StringComparison.Ordinal);
        Assert.Contains(id, reply.References);
        Assert.Equal(robot.Address, reply.From.Mailboxes.Single().Address);
        Assert.Equal(from.Address, reply.To.Mailboxes.Single().Address);
        Assert.Contains(subject, reply.Subject, StringComparison.Ordinal);
        Assert.Contains(MailServer.RobotReturn.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            reply.TextBody, StringComparison.Ordinal);

        var kept = await MailServer.WaitForMessageIdAsync(MailServer.Robot, id, Patience);
        Assert.Equal(sent.Subject, kept.Subject);
    }

    [Fact]
    public async Task IMAP_IDLE_is_woken_when_mail_arrives()
    {
        using var imap = await MailServer.ConnectImapAsync(MailServer.Sender);
        Assert.True(imap.Capabilities.HasFlag(ImapCapabilities.Idle), "Dovecot offers IDLE");
        var inbox = imap.Inbox;
        await inbox.OpenAsync(FolderAccess.ReadOnly);
        var sent = MailServer.NewMessage(MailServer.Address(MailServer.Bob, MailServer.PartnerDomain),
            MailServer.Address(MailServer.Sender), MailServer.UniqueSubject("Re: Proposal"));
        var id = sent.MessageId!;

        using var deadline = new CancellationTokenSource(Patience);
        var mailSent = false;
        var wakeUps = 0;
        while (true)
        {
            // Other mail may wake the IDLE too: idle again until ours is there. Mail that lands between SELECT and
            // IDLE is reported as IDLE starts, so sending once the IDLE task is under way cannot miss it.
            using var done = new CancellationTokenSource();
            void Woken(object? sender, EventArgs e) => done.Cancel();
            inbox.CountChanged += Woken;
            try
            {
                var idle = imap.IdleAsync(done.Token, deadline.Token);
                if (!mailSent)
                {
                    await MailServer.SendAsync(sent, cancellationToken: deadline.Token);
                    mailSent = true;
                }
                await idle;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                Assert.Fail($"IDLE was not woken by the new mail within {Patience.TotalSeconds:0} s ({wakeUps} other wake-ups).\n" +
                    MailServer.PostfixLogTail());
            }
            finally
            {
                inbox.CountChanged -= Woken;
            }
            wakeUps++;
            if ((await inbox.SearchAsync(SearchQuery.HeaderContains("Message-ID", id))).Count > 0) break;
        }
    }

    /// <summary>The returned message in a DSN (message/rfc822, or text/rfc822-headers: MimeKit parses both).</summary>
    static MimeMessage? Original(MimeMessage dsn) =>
        dsn.BodyParts.OfType<MessagePart>().Select(p => p.Message).FirstOrDefault(m => m is not null);
}
