using EmailTracking.Server.Replies.Classification;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>
/// 80 out-of-office notices as Exchange, Microsoft 365, Gmail's vacation responder, iCloud, Zimbra and Thunderbird send
/// them, dated around the turn of 2026, in twelve languages and regional forms, written blind to the rules (session 32),
/// with the return date their writer expected in <c>Fixtures/returndates/expected.tsv</c> (and, where the wording allows
/// more than one reading, the others they would accept). 64 agreed when the set was written; the rest were phrases the
/// rules did not know ("Return date:", "back at 9am on Monday", "de retour au bureau le", "wracam do biura", "me
/// reincorporo", "am 4. Januar wieder im Büro", "morgen weer op kantoor", "entre 12 e 20 de novembro", a weekday before a
/// range's end, "bis Ende März") and a British "until 04/01/2027" from a Gmail address, read as 1 April.
/// </summary>
public sealed class ReturnDateFixtureTests(ITestOutputHelper output)
{
    private static readonly InboundClassifier Classifier = new();

    private static string Folder => Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "returndates");

    public static TheoryData<string, string, string> Expected()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var line in File.ReadLines(Path.Combine(Folder, "expected.tsv")))
        {
            if (line.StartsWith('#') || line.Length == 0)
                continue;
            var cells = line.Split('\t');
            data.Add(cells[0], cells[1], cells[2]);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Expected))]
    public void An_out_of_office_notice_gives_the_return_date_its_writer_meant(string file, string expected, string alsoAccepted)
    {
        using var stream = File.OpenRead(Path.Combine(Folder, file));
        var result = Classifier.ClassifyStream(stream);
        var got = result.ReturnDate?.ToString("yyyy-MM-dd") ?? "";
        output.WriteLine($"{file}: {result.Kind} {got} (expected {expected}{(alsoAccepted.Length > 0 ? " or " + alsoAccepted : "")}) — {result.Reason}");
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        var accepted = alsoAccepted.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(a => a == "none" ? "" : a).Append(expected);
        Assert.Contains(got, accepted);
    }
}
