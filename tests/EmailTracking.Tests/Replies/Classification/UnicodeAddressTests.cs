using System.Text;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Replies.Classification;
using MimeKit;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>Failed recipients with internationalised addresses (SMTPUTF8 / EAI, RFC 6530–6533) and punycode domains.</summary>
public sealed class UnicodeAddressTests
{
    private static readonly InboundClassifier Classifier = new();

    private const string PostfixReport = """
        From: MAILER-DAEMON@mx.sellerco.example (Mail Delivery System)
        To: jane@sellerco.example
        Subject: Undelivered Mail Returned to Sender
        Date: Mon, 30 Nov 2026 10:00:00 +0000
        Message-ID: <b1@mx.sellerco.example>
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        This is the mail system at host mx.sellerco.example.

        I'm sorry to have to inform you that your message could not
        be delivered to one or more recipients.

        <ADDR>: host mx.buyer.example[192.0.2.1] said: 550 5.1.1
            <ADDR>: Recipient address rejected: User unknown (in reply to RCPT TO
            command)
        """;

    private const string GlobalDeliveryStatus = """
        From: MAILER-DAEMON@mx.sellerco.example (Mail Delivery System)
        To: jane@sellerco.example
        Subject: Undelivered Mail Returned to Sender
        Date: Mon, 30 Nov 2026 10:00:00 +0000
        Message-ID: <b2@mx.sellerco.example>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="XX"

        --XX
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        Your message could not be delivered.

        --XX
        Content-Type: message/global-delivery-status
        Content-Transfer-Encoding: 8bit

        Reporting-MTA: dns; mx.sellerco.example

        Final-Recipient: utf-8; ADDR
        Action: failed
        Status: 5.1.1
        Diagnostic-Code: smtp; 550 5.1.1 user unknown

        --XX--
        """;

    private const string EximReport = """
        From: Mail Delivery System <Mailer-Daemon@mx.sellerco.example>
        To: jane@sellerco.example
        Subject: Mail delivery failed: returning message to sender
        Date: Mon, 30 Nov 2026 10:00:00 +0000
        Message-ID: <b3@mx.sellerco.example>
        X-Failed-Recipients: ADDR
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8
        Content-Transfer-Encoding: 8bit

        This message was created automatically by mail delivery software.

        A message that you sent could not be delivered to one or more of its
        recipients. This is a permanent error. The following address(es) failed:

          ADDR
            host mx.buyer.example [192.0.2.1]
            SMTP error from remote mail server after RCPT TO:<ADDR>:
            550 5.1.1 User unknown
        """;

    private static InboundClassification Classify(string template, string address)
    {
        var raw = template.Replace("ADDR", address, StringComparison.Ordinal).Replace("\n", "\r\n", StringComparison.Ordinal);
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(raw));
        return Classifier.ClassifyStream(stream);
    }

    public static TheoryData<string, string> Reports()
    {
        var data = new TheoryData<string, string>();
        foreach (var report in new[] { "postfix", "global", "exim" })
        {
            foreach (var address in new[] { "用户@例子.广告", "josé@exämple.de", "дмитрий@пример.рф", "bob@xn--exmple-cua.de" })
                data.Add(report, address);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Reports))]
    public void An_internationalised_address_is_the_failed_recipient(string report, string address)
    {
        var result = Classify(report switch { "postfix" => PostfixReport, "global" => GlobalDeliveryStatus, _ => EximReport }, address);
        Assert.Equal(InboundKind.Bounce, result.Kind);
        var recipient = Assert.Single(result.Recipients);
        Assert.Equal(address, recipient.Address);
        Assert.True(recipient.Permanent);
    }

    [Fact]
    public void An_address_escaped_as_utf8_addr_xtext_is_decoded()
    {
        // RFC 6533: in a message/delivery-status part a non-ASCII address is written with \x{HEX} escapes.
        var result = Classify(GlobalDeliveryStatus.Replace("message/global-delivery-status", "message/delivery-status", StringComparison.Ordinal),
            @"jos\x{E9}@ex\x{E4}mple.de");
        Assert.Equal("josé@exämple.de", Assert.Single(result.Recipients).Address);
    }

    [Fact]
    public void One_mailbox_named_in_unicode_and_in_punycode_is_one_recipient()
    {
        var result = Classify(PostfixReport.Replace("    <ADDR>: Recipient", "    <bob@xn--exmple-cua.de>: Recipient", StringComparison.Ordinal), "bob@exämple.de");
        var recipient = Assert.Single(result.Recipients);
        Assert.Equal(AccountService.AddressKey("bob@xn--exmple-cua.de"), AccountService.AddressKey(recipient.Address));
    }

    [Fact]
    public void The_senders_own_address_in_punycode_is_not_taken_for_the_failed_recipient()
    {
        // A report that names no address: the original's only addressee other than the sender is the one. The sender,
        // jane@séller.example, copied herself in punycode.
        const string report = """
            From: MAILER-DAEMON@mx.sellerco.example (Mail Delivery System)
            To: jane@séller.example
            Subject: Undeliverable message
            Date: Mon, 30 Nov 2026 10:00:00 +0000
            Message-ID: <b4@mx.sellerco.example>
            MIME-Version: 1.0
            Content-Type: multipart/mixed; boundary="XX"

            --XX
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: 8bit

            Your message could not be delivered: the recipient's mailbox does not exist. This is a permanent error.

            --XX
            Content-Type: message/rfc822

            From: Jane Seller <jane@séller.example>
            To: Bob Buyer <bob@buyer.example>
            Cc: Jane Seller <jane@xn--sller-bsa.example>
            Subject: Pricing
            Message-ID: <et-1@séller.example>

            Hello Bob.

            --XX--
            """;
        var result = Classify(report, "unused");
        Assert.Equal(InboundKind.Bounce, result.Kind);
        Assert.Equal("bob@buyer.example", Assert.Single(result.Recipients).Address);
    }

    [Theory]
    // Japanese text around an ASCII address, without spaces: the address is the ASCII part only.
    [InlineData("宛先user@example.jpへの配信に失敗しました: 550 5.1.1 user unknown", "user@example.jp")]
    [InlineData("送信先：user@example.jp（ユーザーが存在しません）550 5.1.1 user unknown", "user@example.jp")]
    public void Text_in_another_script_around_an_ascii_address_is_not_part_of_it(string line, string expected)
    {
        var result = Classify(PostfixReport.Replace("<ADDR>: host mx.buyer.example[192.0.2.1] said: 550 5.1.1\n    <ADDR>: Recipient address rejected: User unknown (in reply to RCPT TO\n    command)",
            line + "\n550 5.1.1 User unknown", StringComparison.Ordinal), "x");
        Assert.Equal(expected, Assert.Single(result.Recipients).Address);
    }
}
