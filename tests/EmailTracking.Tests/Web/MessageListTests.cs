using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Web;

/// <summary>The message list as the server renders it: its Documents column and long recipient lists.</summary>
public sealed class MessageListTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";
    const string Outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)";

    static string Body(string html, string messageId)
    {
        var start = html.IndexOf($"<tbody class=\"message\" data-message-id=\"{messageId}\" ", StringComparison.Ordinal);
        Assert.True(start >= 0, "the message is not in the list");
        return html[start..html.IndexOf("</tbody>", start, StringComparison.Ordinal)];
    }

    async Task OpenAsync(string pixelUrl, string ip)
    {
        using var hit = new HttpRequestMessage(HttpMethod.Get, TestApi.Path(pixelUrl));
        hit.Headers.TryAddWithoutValidation("User-Agent", Outlook);
        hit.Headers.Add("X-Test-Remote-Ip", ip);
        (await app.Anonymous().SendAsync(hit)).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task A_message_to_many_people_lists_ten_those_who_did_something_first_and_links_to_the_rest()
    {
        var user = await app.NewUserAsync(password: Password);
        var to = Enumerable.Range(1, 25).Select(i => $"buyer{i:00}@buyer.test").ToArray();
        var reg = await user.RegisterSimpleAsync(to: to);
        var id = reg.GetProperty("id").GetString()!;
        // Two of the last by address open it: they are shown although the first ten by address did nothing.
        var copies = reg.GetProperty("copies").EnumerateArray().ToDictionary(c => c.GetProperty("recipients")[0].GetString()!, c => c.GetProperty("pixelUrl").GetString()!);
        await OpenAsync(copies["buyer24@buyer.test"], "203.0.113.24");
        await OpenAsync(copies["buyer25@buyer.test"], "203.0.113.25");

        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var body = Body(await browser.GetStringAsync("/"), id);
        Assert.Equal(10, Regex.Matches(body, "<tr data-recipient-id=\"[0-9a-f-]{36}\" ").Count);
        Assert.Contains("buyer24@buyer.test", body);
        Assert.Contains("buyer25@buyer.test", body);
        Assert.Contains("buyer01@buyer.test", body);
        Assert.DoesNotContain("buyer09@buyer.test", body);
        Assert.Contains("rowspan=\"11\"", body);
        Assert.Matches($"and 15 more recipients — <a href=\"/messages/{id}\">", body);
        // The message's own page lists everyone.
        var page = await browser.GetStringAsync($"/messages/{id}");
        Assert.Equal(25, Regex.Matches(page, "<tr data-recipient-id=\"[0-9a-f-]{36}\" ").Count);

        // A shared copy to as many names ten of them and says how many more.
        var shared = await user.RegisterSimpleAsync(perRecipient: false, to: to);
        var sharedBody = Body(await browser.GetStringAsync("/"), shared.GetProperty("id").GetString()!);
        Assert.Contains("buyer10@buyer.test", sharedBody);
        Assert.DoesNotContain("buyer11@buyer.test", sharedBody);
        Assert.Contains("and 15 more</span>", sharedBody);

        // Ten or fewer: everyone, in the message's order.
        var few = await user.RegisterSimpleAsync(to: ["b@buyer.test", "a@buyer.test"]);
        var fewBody = Body(await browser.GetStringAsync("/"), few.GetProperty("id").GetString()!);
        Assert.True(fewBody.IndexOf("a@buyer.test", StringComparison.Ordinal) < fewBody.IndexOf("b@buyer.test", StringComparison.Ordinal));
        Assert.DoesNotContain("more recipients", fewBody);
    }

    [Fact]
    public async Task Document_reading_counts_per_recipient_and_is_the_last_activity_when_it_came_last()
    {
        var user = await app.NewUserAsync(password: Password);
        var reg = await user.RegisterSimpleAsync(to: ["alan@encom.test", "flynn@encom.test"]);
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        var copies = reg.GetProperty("copies").EnumerateArray().ToDictionary(c => c.GetProperty("recipients")[0].GetString()!, c => c.GetProperty("pixelUrl").GetString()!);
        await OpenAsync(copies["alan@encom.test"], "203.0.113.7");
        // Alan then reads three pages and downloads the file; a link previewer fetches Flynn's link.
        app.WithDb(db =>
        {
            var m = db.Messages.Single(x => x.Id == id);
            var alan = db.Recipients.Single(r => r.TrackedMessageId == id && r.Address == "alan@encom.test").Id;
            var flynn = db.Recipients.Single(r => r.TrackedMessageId == id && r.Address == "flynn@encom.test").Id;
            var copy = db.Copies.First(c => c.TrackedMessageId == id);
            var at = DateTimeOffset.UtcNow.AddMinutes(5);
            TrackingEvent E(Guid recipient, EventKind kind, Verdict verdict, int minutes) => new()
            {
                TeamId = m.TeamId, UserId = m.UserId, TrackedMessageId = id, CopyId = copy.Id, RecipientId = recipient, Kind = kind,
                OccurredAt = at.AddMinutes(minutes), Verdict = verdict, Reason = "test",
            };
            db.Events.AddRange(E(alan, EventKind.DocumentView, Verdict.Human, 0), E(alan, EventKind.DocumentPage, Verdict.Human, 1),
                E(alan, EventKind.DocumentPage, Verdict.Human, 2), E(alan, EventKind.DocumentPage, Verdict.Human, 3),
                E(alan, EventKind.Download, Verdict.Human, 4), E(flynn, EventKind.DocumentView, Verdict.Bot, 0));
            return db.SaveChanges();
        });

        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var body = Body(await browser.GetStringAsync("/"), id.ToString());
        var rows = Regex.Matches(body, "<tr data-recipient-id=.*?</tr>", RegexOptions.Singleline).Select(x => System.Net.WebUtility.HtmlDecode(x.Value)).ToList();
        var alanRow = rows.Single(r => r.Contains("alan@encom.test"));
        var flynnRow = rows.Single(r => r.Contains("flynn@encom.test"));
        Assert.Contains("data-views=\"1\" data-pages=\"3\" data-downloads=\"1\"><span class=\"\">3 pages read, downloaded</span>", alanRow);
        Assert.Matches("<td class=\"last\"[^>]*>\\s*<span>read a document <time", alanRow);
        // The previewer is a machine: nothing read, one machine event hidden.
        Assert.Contains("<span class=\"muted\">—</span>", flynnRow);
        Assert.Contains("1 machine event hidden", flynnRow);
        var page = await browser.GetStringAsync($"/messages/{id}");
        Assert.Contains("3 pages read, downloaded", page);
    }

    [Fact]
    public async Task The_senders_own_views_are_hidden_and_counted_apart_from_machines()
    {
        var user = await app.NewUserAsync(password: Password);
        var reg = await user.RegisterSimpleAsync(to: ["alan@encom.test", "lora@encom.test"]);
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        // Alan's copy: a crawler's open and a scanner's click, and the sender's own open; Lora's: only the sender's own open.
        app.WithDb(db =>
        {
            var m = db.Messages.Single(x => x.Id == id);
            var alan = db.Recipients.Single(r => r.TrackedMessageId == id && r.Address == "alan@encom.test");
            var lora = db.Recipients.Single(r => r.TrackedMessageId == id && r.Address == "lora@encom.test");
            TrackingEvent E(Recipient r, EventKind kind, Verdict verdict) => new()
            {
                TeamId = m.TeamId, UserId = m.UserId, TrackedMessageId = id, CopyId = r.CopyId, RecipientId = r.Id, Kind = kind,
                OccurredAt = DateTimeOffset.UtcNow, Verdict = verdict, Reason = "test",
            };
            db.Events.AddRange(E(alan, EventKind.Open, Verdict.Bot), E(alan, EventKind.Click, Verdict.Scanner), E(alan, EventKind.Open, Verdict.Self),
                E(lora, EventKind.Open, Verdict.Self));
            return db.SaveChanges();
        });

        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var list = await browser.GetStringAsync("/");
        var rows = Regex.Matches(Body(list, id.ToString()), "<tr data-recipient-id=.*?</tr>", RegexOptions.Singleline).Select(x => x.Value).ToList();
        var alanRow = rows.Single(r => r.Contains("alan@encom.test"));
        var loraRow = rows.Single(r => r.Contains("lora@encom.test"));
        Assert.Contains("data-machines=\"2\" data-own=\"1\">2 machine events and 1 of your own views hidden</div>", alanRow);
        Assert.Contains("data-machines=\"0\" data-own=\"1\">1 of your own views hidden</div>", loraRow);
        Assert.DoesNotContain("machine event", loraRow);
        Assert.Contains("<span class=\"opens\">0</span>", loraRow);
        // The live feed's note names both, and counts them apart for the script.
        Assert.Matches("id=\"hidden-note\" data-machines=\"2\" data-own=\"2\"><span id=\"hidden-words\">2 machine events and 2 of your own views</span> hidden", list);

        // Machines shown: the sender's own count beside the machines', apart from them.
        var shown = Body(await browser.GetStringAsync("/?machines=true"), id.ToString());
        var alanShown = Regex.Match(shown, "<tr data-recipient-id=[^>]*>(?:(?!</tr>).)*alan@encom.test.*?</tr>", RegexOptions.Singleline).Value;
        Assert.Contains("<span class=\"machine\" title=\"machine opens\">+1</span>", alanShown);
        Assert.Contains("<span class=\"own\" title=\"your own opens\">+1</span>", alanShown);
        Assert.Contains("<span class=\"machine\" title=\"machine clicks\">+1</span>", alanShown);
        Assert.DoesNotContain("machine-note", shown);

        // The message's page: its hidden note names both as well.
        var page = await browser.GetStringAsync($"/messages/{id}");
        Assert.Matches("id=\"hidden-note\" data-machines=\"2\" data-own=\"2\"><span id=\"hidden-words\">2 machine events and 2 of your own views</span> hidden — show</a>", page);

        // A message whose only event is the sender's own view has no machine event to hide.
        var own = await user.RegisterSimpleAsync(to: ["sam@encom.test"]);
        var ownId = Guid.Parse(own.GetProperty("id").GetString()!);
        app.WithDb(db =>
        {
            var m = db.Messages.Single(x => x.Id == ownId);
            var sam = db.Recipients.Single(r => r.TrackedMessageId == ownId);
            db.Events.Add(new TrackingEvent
            {
                TeamId = m.TeamId, UserId = m.UserId, TrackedMessageId = ownId, CopyId = sam.CopyId, RecipientId = sam.Id, Kind = EventKind.Open,
                OccurredAt = DateTimeOffset.UtcNow, Verdict = Verdict.Self, Reason = "test",
            });
            return db.SaveChanges();
        });
        var ownPage = await browser.GetStringAsync($"/messages/{ownId}");
        Assert.Contains("<span id=\"hidden-words\">1 of your own views</span> hidden — show</a>", ownPage);
        Assert.DoesNotContain("machine event", ownPage);
    }
}
