using EmailTracking.Server.Replies.Classification;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>
/// 70 delivery failures as the mail systems a sales team's mail meets write them today (Gmail and Google Workspace,
/// Microsoft 365 in four languages, Exchange, Postfix, Exim, Sendmail, qmail, Yahoo, Zoho, Amazon SES, and the filters in
/// front of them) and 20 people's messages that only talk about one, written blind to the rules (session 32), with the
/// answers their writer expected in <c>Fixtures/bounces/expected.tsv</c>. Before that session's fixes, Microsoft 365's
/// English "recipient not found" (550 5.1.10) was a soft bounce, a postmaster's own answer was a report, and a person's
/// reply to a report forwarded to them was that report, failed address and all.
/// </summary>
public sealed class BounceFixtureTests(ITestOutputHelper output)
{
    private static readonly InboundClassifier Classifier = new();

    private static string Folder => Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "bounces");

    public static TheoryData<string, string, string, string> Expected()
    {
        var data = new TheoryData<string, string, string, string>();
        foreach (var line in File.ReadLines(Path.Combine(Folder, "expected.tsv")))
        {
            if (line.StartsWith('#') || line.Length == 0)
                continue;
            var cells = line.Split('\t');
            data.Add(cells[0], cells[1], cells[2], cells[3]);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Expected))]
    public void A_delivery_failure_names_its_failed_addresses_and_original_and_a_person_writing_about_one_is_a_person(
        string file, string kind, string failed, string originalMessageId)
    {
        using var stream = File.OpenRead(Path.Combine(Folder, file));
        var result = Classifier.ClassifyStream(stream);
        output.WriteLine($"{file}: {result.Kind} [{string.Join(", ", result.Recipients.Select(r => $"{r.Address} {r.Status} {r.Cause}"))}] — {result.Reason}");
        Assert.Equal(kind, result.Kind switch { InboundKind.Bounce => "bounce", InboundKind.Human => "human", var other => other.ToString() });
        Assert.Equal(
            failed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.OrdinalIgnoreCase),
            result.Recipients.Select(r => r.Address).Order(StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase);
        Assert.Equal(originalMessageId.Trim('<', '>'), (result.OriginalMessageId ?? "").Trim('<', '>'), ignoreCase: true);
    }

    [Theory]
    [InlineData("b11_m365_en_5_1_10_recipient_not_found.eml")]
    [InlineData("b15_m365_de_unzustellbar_5_1_10.eml")]
    [InlineData("b16_m365_fr_nonremis_5_1_10.eml")]
    [InlineData("b17_m365_es_no_se_puede_entregar_5_1_10.eml")]
    public void Microsoft_365s_recipient_not_found_is_an_unknown_user_and_a_hard_bounce(string file)
    {
        using var stream = File.OpenRead(Path.Combine(Folder, file));
        var result = Classifier.ClassifyStream(stream);
        var recipient = Assert.Single(result.Recipients);
        Assert.Equal(BounceCause.UserUnknown, recipient.Cause);
        Assert.True(recipient.Permanent);
        Assert.Equal("5.1.10", recipient.Status);
    }
}
