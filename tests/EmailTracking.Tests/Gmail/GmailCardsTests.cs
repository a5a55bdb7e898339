using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmailTracking.Server.Gmail;

namespace EmailTracking.Tests.Gmail;

/// <summary>
/// The card builders are pure functions: fixed data gives exactly the JSON in Gmail/Golden/ (shapes from Google's card
/// reference; written unescaped for reading). ET_UPDATE_GOLDEN=1 rewrites the files after an intended change; review the diff.
/// </summary>
public sealed class GmailCardsTests
{
    static readonly CardLinks Links = new("https://t.example.com/gmail/homepage", "https://t.example.com/", "https://t.example.com/gmail/compose");
    static readonly DateTimeOffset Since = new(2026, 11, 28, 0, 0, 0, TimeSpan.Zero);

    static TodayActivity Busy => new(Since,
        new ActivityCounts(Opens: 7, Clicks: 2, DocumentViews: 1, PagesRead: 12, Downloads: 1, Replies: 1),
        new ActivityCounts(Opens: 4, Clicks: 3, DocumentViews: 0, PagesRead: 0, Downloads: 0, Replies: 0),
        [
            new EngagedRecipient("sam@encom.test", 9, Since.AddHours(14).AddMinutes(5)),
            new EngagedRecipient("alan@encom.test", 2, Since.AddHours(9)),
        ]);

    static void AssertGolden(JsonObject actual, string name, [CallerFilePath] string here = "")
    {
        var path = Path.Combine(Path.GetDirectoryName(here)!, "Golden", name + ".json");
        var text = actual.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
        if (Environment.GetEnvironmentVariable("ET_UPDATE_GOLDEN") == "1") File.WriteAllText(path, text);
        Assert.True(File.Exists(path), $"no golden file {path}: run with ET_UPDATE_GOLDEN=1 once and review it");
        Assert.Equal(File.ReadAllText(path).ReplaceLineEndings("\n"), text);
    }

    [Fact]
    public void Homepage_with_activity() =>
        AssertGolden(GmailCards.Push(GmailCards.Homepage(Busy, showMachines: false, Links, TimeSpan.FromHours(1))), "homepage");

    [Fact]
    public void Homepage_with_machines_as_a_callback_answer() =>
        AssertGolden(GmailCards.Update(GmailCards.Homepage(Busy, showMachines: true, Links, TimeSpan.FromHours(1))), "homepage-machines");

    [Fact]
    public void Homepage_of_a_quiet_day() =>
        AssertGolden(GmailCards.Push(GmailCards.Homepage(new TodayActivity(Since, ActivityCounts.None, ActivityCounts.None, []), false, Links, TimeSpan.Zero)),
            "homepage-empty");

    [Fact]
    public void Link_account_escapes_the_address() =>
        AssertGolden(GmailCards.Push(GmailCards.LinkAccount("<b>x</b>@gmail.test", Links)), "link-account");

    [Fact]
    public void Compose_card() =>
        AssertGolden(GmailCards.Push(GmailCards.Compose(new DraftRecipients(["sam@encom.test", "Alan <alan@encom.test>"], ["lora@encom.test"], []), Links)),
            "compose");

    [Fact]
    public void Compose_card_for_a_draft_without_recipients() =>
        AssertGolden(GmailCards.Push(GmailCards.Compose(new DraftRecipients([], [], []), Links)), "compose-no-recipients");

    [Fact]
    public void Pixel_insert() => AssertGolden(GmailCards.InsertPixel("https://t.example.com/o/abc\"def.gif"), "insert-pixel");

    [Fact]
    public void Coming_soon() => AssertGolden(GmailCards.Push(GmailCards.ComingSoon("Tracking from compose", Links)), "coming-soon");

    [Fact]
    public void Cards_follow_the_reference_shapes_and_limits()
    {
        var many = Enumerable.Range(0, 20).Select(i => new EngagedRecipient($"r{i}@x.test", 1, Since)).ToList();
        var card = GmailCards.Homepage(Busy with { TopRecipients = many }, true, Links, TimeSpan.Zero);
        Assert.True(GmailCards.CountWidgets(card) <= GmailCards.MaxWidgets);
        // Every section has widgets; every button has exactly one onClick kind; no Chat-only "interaction" field.
        foreach (var s in card["sections"]!.AsArray()) Assert.NotEmpty(s!["widgets"]!.AsArray());
        var json = card.ToJsonString();
        Assert.DoesNotContain("interaction", json);
        Assert.DoesNotContain("fixedFooter", json);
        Assert.False(string.IsNullOrEmpty(card["header"]!["title"]!.GetValue<string>()));
    }
}
