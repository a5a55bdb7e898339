using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Tracking;

/// <summary>
/// A click on the hidden honeypot link gives a scanner away, and with it the clicks of the copy within the burst window
/// before it: a scanner walking the body in document order clicks the visible links first and the honeypot, last in
/// the body, after them. Run with a ten-second window, so that clicks sent one after the other are inside it however
/// busy the machine.
/// </summary>
public abstract class HoneypotBurstTests(WideClickBurstApp app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    const string Safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

    async Task<HttpStatusCode> ClickAsync(string url, string ip, string userAgent)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, TestApi.Path(url));
        req.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        req.Headers.Add("X-Test-Remote-Ip", ip);
        using var res = await app.Anonymous(null).SendAsync(req);
        return res.StatusCode;
    }

    static string Link(JsonElement reg) => reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!;

    static string Honeypot(JsonElement reg)
    {
        var doc = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(reg.GetProperty("copies")[0].GetProperty("html").GetString()!);
        return doc.QuerySelectorAll("a[aria-hidden=true]").Single().GetAttribute("href")!;
    }

    List<TrackingEvent> EventsOf(string id) =>
        app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TrackedMessageId == Guid.Parse(id)).OrderBy(e => e.Id).ToList());

    List<VerdictChange> ChangesOf(string id) =>
        app.WithDb(db => db.VerdictChanges.AsNoTracking().Where(c => c.TrackedMessageId == Guid.Parse(id)).OrderBy(c => c.Id).ToList());

    [Fact]
    public async Task A_honeypot_click_after_the_visible_link_takes_that_click_back_as_a_scanners()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var id = reg.GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.Redirect, await ClickAsync(Link(reg), "203.0.113.10", Chrome));
        Assert.Equal(HttpStatusCode.OK, await ClickAsync(Honeypot(reg), "203.0.113.10", Chrome));

        var events = EventsOf(id);
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(Verdict.Scanner, e.Verdict));
        Assert.Equal("clicked within 10 seconds of the hidden honeypot link: one machine following every link", events[0].Reason);
        // The visible link's click was a person's when recorded: it is taken back once, for the live feeds.
        var change = Assert.Single(ChangesOf(id));
        Assert.Equal((events[0].Id, Verdict.Human, Verdict.Scanner, EventKind.Click), (change.EventId, change.From, change.To, change.Kind));
        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        Assert.Equal(0, detail.GetProperty("message").GetProperty("counts").GetProperty("clicks").GetInt32());
    }

    [Fact]
    public async Task On_a_shared_copy_a_honeypot_click_takes_back_only_the_same_clients_clicks()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(perRecipient: false, to: ["alan@encom.test", "lora@encom.test"]);
        var id = reg.GetProperty("id").GetString()!;
        // A recipient clicks; so does a scanner, which then follows the honeypot.
        Assert.Equal(HttpStatusCode.Redirect, await ClickAsync(Link(reg), "198.51.100.20", Safari));
        Assert.Equal(HttpStatusCode.Redirect, await ClickAsync(Link(reg), "203.0.113.10", Chrome));
        Assert.Equal(HttpStatusCode.OK, await ClickAsync(Honeypot(reg), "203.0.113.10", Chrome));

        var events = EventsOf(id);
        Assert.Equal(3, events.Count);
        Assert.Equal([Verdict.Human, Verdict.Scanner, Verdict.Scanner], events.Select(e => e.Verdict));
        Assert.Equal(events[1].Id, Assert.Single(ChangesOf(id)).EventId);
    }
}

public sealed class HoneypotBurstOnSqlite(WideClickBurstSqliteApp app) : HoneypotBurstTests(app), IClassFixture<WideClickBurstSqliteApp>;

public sealed class HoneypotBurstOnPostgres(WideClickBurstPostgresApp app) : HoneypotBurstTests(app), IClassFixture<WideClickBurstPostgresApp>;
