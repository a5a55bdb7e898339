using System.Net;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Tracking;

/// <summary>
/// The burst rule (different links of a copy clicked within the burst window are one scanner) on a shared copy, one
/// body for every recipient: there the clicks of different clients are different people. Run with a ten-second window,
/// so that clicks sent one after the other are inside it however busy the machine.
/// </summary>
public abstract class SharedCopyBurstTests(WideClickBurstApp app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    const string Safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

    const string ThreeLinks = "<a href=\"https://example.com/1\">1</a><a href=\"https://example.com/2\">2</a><a href=\"https://example.com/3\">3</a>";

    async Task<(string Id, Func<int, string, string, Task> Click)> RegisterAsync(bool perRecipient)
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: ThreeLinks, perRecipient: perRecipient, to: ["alan@encom.test", "lora@encom.test"]);
        async Task Click(int link, string ip, string userAgent)
        {
            var url = reg.GetProperty("copies")[0].GetProperty("links")[link].GetProperty("trackedUrl").GetString()!;
            using var req = new HttpRequestMessage(HttpMethod.Get, TestApi.Path(url));
            req.Headers.TryAddWithoutValidation("User-Agent", userAgent);
            req.Headers.Add("X-Test-Remote-Ip", ip);
            using var res = await app.Anonymous(null).SendAsync(req);
            Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        }
        return (reg.GetProperty("id").GetString()!, Click);
    }

    List<TrackingEvent> EventsOf(string id) =>
        app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TrackedMessageId == Guid.Parse(id)).OrderBy(e => e.Id).ToList());

    [Fact]
    public async Task Two_recipients_clicking_two_links_of_a_shared_copy_together_are_two_people()
    {
        var (id, click) = await RegisterAsync(perRecipient: false);
        await click(0, "203.0.113.10", Chrome);
        // Another person: another address, or the same office's address and another browser.
        await click(1, "198.51.100.20", Safari);
        await click(2, "203.0.113.10", Safari);
        var events = EventsOf(id);
        Assert.Equal(3, events.Count);
        Assert.All(events, e => Assert.Equal((Verdict.Human, "no machine signal"), (e.Verdict, e.Reason)));
    }

    [Fact]
    public async Task One_client_clicking_several_links_of_a_shared_copy_is_still_a_scanner_and_others_clicks_stay_a_persons()
    {
        var (id, click) = await RegisterAsync(perRecipient: false);
        await click(0, "198.51.100.20", Safari);
        await click(0, "203.0.113.10", Chrome);
        await click(1, "203.0.113.10", Chrome);
        await Task.WhenAll(click(2, "203.0.113.10", Chrome), click(1, "203.0.113.10", Chrome));
        var events = EventsOf(id);
        Assert.Equal(5, events.Count);
        Assert.Equal(Verdict.Human, events[0].Verdict);
        Assert.All(events.Skip(1), e => Assert.Equal((Verdict.Scanner, "several links clicked within 10 seconds"), (e.Verdict, e.Reason.Split(" (")[0])));
    }

    [Fact]
    public async Task A_copy_for_one_recipient_keeps_the_rule_for_every_client()
    {
        var (id, click) = await RegisterAsync(perRecipient: true);
        await click(0, "203.0.113.10", Chrome);
        await click(1, "198.51.100.20", Safari);
        var events = EventsOf(id);
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(Verdict.Scanner, e.Verdict));
    }
}

public sealed class SharedCopyBurstOnSqlite(WideClickBurstSqliteApp app) : SharedCopyBurstTests(app), IClassFixture<WideClickBurstSqliteApp>;

public sealed class SharedCopyBurstOnPostgres(WideClickBurstPostgresApp app) : SharedCopyBurstTests(app), IClassFixture<WideClickBurstPostgresApp>;
