using EmailTracking.Server.Replies.Classification;
using MimeKit;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>
/// Read receipts (RFC 8098 message disposition notifications) from Outlook/Exchange, Thunderbird and Domino: receipts,
/// never a person's reply, and an open only when the reader displayed the message. Before, each was a human reply (no
/// auto-reply header, no bounce format): Thunderbird's, which names our Message-ID in In-Reply-To, would have stopped a
/// sequence and shown as "replied".
/// </summary>
public sealed class ReadReceiptTests
{
    private static readonly InboundClassifier Classifier = new();

    private const string OurId = "4f0c2b9e8d7a41c6b5e3f2a1d0c9b8a7@track.sellerco.example";

    private static InboundClassification Fixture(string name)
    {
        using var stream = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "receipt", name));
        return Classifier.ClassifyStream(stream);
    }

    [Theory]
    // Outlook sends it on its own once the reader opened the message (MDN-sent-automatically), but the display was theirs.
    [InlineData("outlook-read-displayed.eml", "displayed", true, "tom@buyer.example")]
    [InlineData("thunderbird-return-receipt-displayed.eml", "displayed", true, "lora@buyer.example")]
    // Exchange's "Not read:" carries Auto-Submitted too: still a receipt, with what it says, not an auto-reply.
    [InlineData("exchange-not-read-deleted.eml", "deleted", false, "tom@buyer.example")]
    // Domino's router: comments in the field, RFC 2298's modifier after the type.
    [InlineData("notes-legacy-processed-comments.eml", "processed", false, "ed.dillinger@buyer.example")]
    public void A_read_receipt_is_a_receipt_and_an_open_only_when_its_reader_displayed_the_message(string file, string disposition, bool opened, string reader)
    {
        var result = Fixture(file);
        Assert.Equal(InboundKind.Receipt, result.Kind);
        Assert.Equal(disposition, result.Disposition);
        Assert.Equal(opened, result.Opened);
        Assert.Equal(OurId, result.OriginalMessageId);
        var recipient = Assert.Single(result.Recipients);
        Assert.Equal((reader, BounceCause.Delivered, (string?)null), (recipient.Address, recipient.Cause, recipient.Status));
        Assert.StartsWith("read receipt (RFC 8098", result.Reason, StringComparison.Ordinal);
        Assert.Null(result.Status);
        Assert.Null(result.Permanent);
        Assert.Null(result.ReturnDate);
    }

    [Theory]
    [InlineData("plain-outlook-read.eml", "displayed", true)]
    [InlineData("plain-de-gelesen.eml", "displayed", true)]
    [InlineData("plain-en-not-read-deleted.eml", "deleted", false)]
    public void A_read_receipt_in_plain_text_is_a_receipt_too(string file, string disposition, bool opened)
    {
        var result = Fixture(file);
        Assert.Equal(InboundKind.Receipt, result.Kind);
        Assert.Equal(disposition, result.Disposition);
        Assert.Equal(opened, result.Opened);
        Assert.StartsWith("read receipt in plain text", result.Reason, StringComparison.Ordinal);
        Assert.Single(result.Recipients);
    }

    [Fact]
    public void A_persons_answer_with_a_read_subject_and_no_quote_stays_a_persons_reply()
    {
        // "Read:" and "was read on" without the receipt's "your message … was read on" shape: a person on a phone.
        using var stream = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "human", "iphone-en-subject-read-no-quote.eml"));
        Assert.Equal(InboundKind.Human, Classifier.ClassifyStream(stream).Kind);
    }

    [Fact]
    public void A_receipt_without_a_disposition_is_still_a_receipt_of_an_unknown_disposition_and_no_open()
    {
        var result = Fixture("broken-no-disposition-field.eml");
        Assert.Equal(InboundKind.Receipt, result.Kind);
        Assert.Null(result.Disposition);
        Assert.False(result.Opened);
        Assert.Contains("without a readable Disposition field", result.Reason, StringComparison.Ordinal);
        Assert.Equal("tom@buyer.example", Assert.Single(result.Recipients).Address);
    }

    [Fact]
    public void A_message_displayed_by_an_automatic_action_is_no_open()
    {
        var message = Receipt("automatic-action/MDN-sent-automatically; displayed");
        var result = Classifier.Classify(message);
        Assert.Equal(InboundKind.Receipt, result.Kind);
        Assert.Equal("displayed", result.Disposition);
        Assert.False(result.Opened);
        Assert.Contains("automatic action", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_disposition_notification_part_outside_a_report_is_a_receipt_too()
    {
        // A gateway that rewrapped the report as multipart/mixed: the part still says what it is.
        var mdn = (MultipartReport)Receipt("manual-action/MDN-sent-manually; displayed").Body!;
        var mixed = new Multipart("mixed");
        foreach (var part in mdn.ToList()) { mdn.Remove(part); mixed.Add(part); }
        var message = Receipt("unused");
        message.Body = mixed;
        var result = Classifier.Classify(message);
        Assert.Equal(InboundKind.Receipt, result.Kind);
        Assert.True(result.Opened);
    }

    [Fact]
    public void A_persons_reply_whose_subject_starts_with_read_is_still_a_persons_reply()
    {
        using var stream = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "human", "gmail-en-subject-read-colon.eml"));
        var result = Classifier.ClassifyStream(stream);
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.False(result.Opened);
        Assert.Null(result.Disposition);
    }

    [Theory]
    [InlineData("manual-action/MDN-sent-manually; displayed", "manual-action", "displayed")]
    [InlineData("Manual-Action/MDN-Sent-Automatically; DISPLAYED", "manual-action", "displayed")]
    [InlineData("automatic-action (router) / MDN-sent-automatically; processed/warning", "automatic-action", "processed")]
    [InlineData("manual-action/MDN-sent-manually; displayed/error", "manual-action", "displayed")]
    [InlineData("manual-action/MDN-sent-manually; deleted, expired", "manual-action", "deleted")]
    [InlineData("  manual-action/MDN-sent-manually ;  displayed  ", "manual-action", "displayed")]
    [InlineData("(nested (comment)) manual-action/MDN-sent-manually; (why) displayed", "manual-action", "displayed")]
    [InlineData("displayed", null, null)]
    [InlineData("; displayed", null, "displayed")]
    [InlineData("manual-action;", "manual-action", null)]
    [InlineData("", null, null)]
    [InlineData(null, null, null)]
    public void The_disposition_field_gives_its_action_mode_and_type(string? field, string? mode, string? type)
    {
        Assert.Equal((mode, type), InboundClassifier.ParseDisposition(field));
    }

    private static MimeMessage Receipt(string disposition) =>
        TestReceipts.Read("Tom Buyer <tom@buyer.example>", "jane@sellerco.example", OurId, disposition, "Proposal for the Q3 rollout");
}
