using MimeKit;

namespace EmailTracking.Tests.Replies;

/// <summary>Read receipts (RFC 8098 message disposition notifications) as the tests send them.</summary>
static class TestReceipts
{
    /// <summary>
    /// A read receipt from <paramref name="from"/> for the message <paramref name="originalId"/> (with or without angle
    /// brackets), as Outlook sends it (the original named only in the report) or, with <paramref name="inReplyTo"/>, as
    /// Thunderbird does (in In-Reply-To and References too).
    /// </summary>
    public static MimeMessage Read(string from, string to, string originalId, string disposition, string subject, bool inReplyTo = false)
    {
        var bare = originalId.Trim('<', '>');
        var report = new MultipartReport("disposition-notification")
        {
            new TextPart("plain") { Text = $"Your message\n\nSubject: {subject}\n\nwas read." },
            new MessageDispositionNotification(),
        };
        var mdn = (MessageDispositionNotification)report[1];
        mdn.Fields.Add("Reporting-UA", "mail.example; Microsoft Exchange Server");
        mdn.Fields.Add("Final-Recipient", "rfc822;" + MailboxAddress.Parse(from).Address);
        mdn.Fields.Add("Original-Message-ID", "<" + bare + ">");
        mdn.Fields.Add("Disposition", disposition);
        var m = new MimeMessage
        {
            Subject = "Read: " + subject, Body = report, MessageId = $"{Guid.NewGuid():N}@receipts.example", Date = DateTimeOffset.UtcNow,
        };
        m.From.Add(MailboxAddress.Parse(from));
        m.To.Add(MailboxAddress.Parse(to));
        if (inReplyTo)
        {
            m.InReplyTo = bare;
            m.References.Add(bare);
        }
        return m;
    }
}
