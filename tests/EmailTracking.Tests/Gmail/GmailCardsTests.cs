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
        AssertGolden(GmailCards.Push(GmailCards.LinkAccount("<b>x</b>@gmail.test", "https://et.test/gmail/link?t=CfDJ8-sealed", Links)), "link-account");

    [Fact]
    public void Card_text_shows_an_override_or_an_invisible_character_as_a_replacement_character()
    {
        // "<U+202E>moc.knab-terces@gmail.test" would read "tset.liamg@secret-bank.com" and turn round the words after it.
        var json = GmailCards.Push(GmailCards.LinkAccount("\u202emoc.knab-terces@gmail\u200b.test", "https://et.test/gmail/link?t=x", Links)).ToJsonString();
        Assert.DoesNotContain("\\u202E", json, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\\u200B", json, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\\uFFFDmoc.knab-terces@gmail\\uFFFD.test", json, StringComparison.OrdinalIgnoreCase);
    }

    static readonly Guid Key = Guid.Parse("6f1c9a52-3b7e-4d0a-9c21-5e8f00b1d2a4");
    static readonly DraftRecipients Draft = new(["sam@encom.test", "Alan <alan@encom.test>"], ["lora@encom.test"], []);

    [Fact]
    public void Compose_card() =>
        AssertGolden(GmailCards.Push(GmailCards.Compose(Draft, new ComposeLibrary(null,
        [
            new LibraryDocument(Guid.Parse("0b8e4d1a-2222-4c3b-8d9e-000000000001"), "Proposal <v2>.pdf", 12),
            new LibraryDocument(Guid.Parse("0b8e4d1a-2222-4c3b-8d9e-000000000002"), "One pager.pptx", 1),
        ]), Key, Links)), "compose");

    [Fact]
    public void Compose_card_of_a_solo_plan_and_of_an_empty_library()
    {
        AssertGolden(GmailCards.Push(GmailCards.Compose(Draft, new ComposeLibrary("Tracked documents come with the Team plan.", []), Key, Links)), "compose-solo");
        AssertGolden(GmailCards.Push(GmailCards.Compose(Draft, new ComposeLibrary(null, []), Key, Links)), "compose-empty-library");
    }

    [Fact]
    public void Compose_card_offers_at_most_the_newest_documents_in_one_widget()
    {
        var many = Enumerable.Range(0, 500).Select(i => new LibraryDocument(Guid.NewGuid(), $"d{i}.pdf", 1)).ToList();
        var card = GmailCards.Compose(Draft, new ComposeLibrary(null, many), Key, Links);
        Assert.True(GmailCards.CountWidgets(card) <= GmailCards.MaxWidgets);
        var items = card["sections"]!.AsArray().SelectMany(s => s!["widgets"]!.AsArray()).Single(w => w!["selectionInput"] is not null)!["selectionInput"]!["items"]!.AsArray();
        Assert.Equal(GmailCards.MaxLibraryChoices, items.Count);
        Assert.Equal("d0.pdf (1 page)", items[0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public void Compose_card_for_a_draft_without_recipients() =>
        AssertGolden(GmailCards.Push(GmailCards.Compose(new DraftRecipients([], [], []), new ComposeLibrary(null, []), Key, Links)), "compose-no-recipients");

    [Fact]
    public void Content_insert() =>
        AssertGolden(GmailCards.InsertContent(
            [new DocumentInsert("https://t.example.com/d/abc", "Proposal <v2>.pdf", 12), new DocumentInsert("https://t.example.com/d/def", "One pager.pptx", 1)],
            "https://t.example.com/o/xyz.gif"), "insert-content");

    [Fact]
    public void Notification() => AssertGolden(GmailCards.Notify("This email is already tracked."), "notify");

    [Fact]
    public void Pixel_insert() => AssertGolden(GmailCards.InsertPixel("https://t.example.com/o/abc\"def.gif"), "insert-pixel");

    [Fact]
    public void Conversation_card()
    {
        var at = Since.AddHours(10);
        var perRecipient = new ConversationMessage("Proposal", at.AddHours(-1), true,
        [
            new RecipientActivity("sam@encom.test", 2, 1, 12, 1, false, at, at.AddMinutes(5), 0),
            new RecipientActivity("alan@encom.test", 0, 0, 0, 0, true, null, null, 3),
        ], new RecipientActivity("Everyone", 2, 1, 12, 1, true, at, at.AddMinutes(5), 3));
        var shared = new ConversationMessage("", null, false,
            [new RecipientActivity("lora@encom.test", 0, 0, 0, 0, false, null, null, 0)],
            new RecipientActivity("Everyone", 3, 0, 0, 0, false, at, null, 1));
        AssertGolden(GmailCards.Push(GmailCards.Conversation([perRecipient, shared], Links, TimeSpan.Zero)), "conversation");
        AssertGolden(GmailCards.Push(GmailCards.Conversation([], Links, TimeSpan.Zero)), "conversation-none");
        var crowd = new ConversationMessage("Big", at, true,
            [.. Enumerable.Range(0, 300).Select(i => new RecipientActivity($"r{i}@x.test", 1, 0, 0, 0, false, at, null, 0))], perRecipient.Shared);
        Assert.True(GmailCards.CountWidgets(GmailCards.Conversation([crowd, crowd, crowd, crowd, crowd, crowd], Links, TimeSpan.Zero)) <= GmailCards.MaxWidgets);
    }

    [Theory]
    [InlineData("thread-f:1659728385805497086", "17088a2c5b91b2fe")]
    [InlineData("17088A2C5B91B2FE", "17088a2c5b91b2fe")]
    [InlineData("thread-f:-1", null)]
    [InlineData("thread-f:99999999999999999999999", null)]
    [InlineData("not hex", null)]
    [InlineData("", null)]
    public void Gmail_ids_from_events_are_read_in_the_apis_hex_form(string value, string? expected)
    {
        using var ev = JsonDocument.Parse(new JsonObject { ["gmail"] = new JsonObject { ["threadId"] = value } }.ToJsonString());
        Assert.Equal(expected, GmailAddonApi.GmailId(ev.RootElement, "threadId"));
    }

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
