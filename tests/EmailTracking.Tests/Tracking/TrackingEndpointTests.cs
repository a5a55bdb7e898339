using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Classification;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Tracking;

public abstract class TrackingEndpointTests(AppFactory app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
    const string Outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)";
    const string GoogleProxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

    static async Task<HttpResponseMessage> Hit(HttpClient client, string url, string? ua = Outlook, string method = "GET", string? ip = null, string? cookie = null)
    {
        var req = new HttpRequestMessage(new HttpMethod(method), TestApi.Path(url));
        if (ua is not null) req.Headers.TryAddWithoutValidation("User-Agent", ua);
        if (ip is not null) req.Headers.Add("X-Test-Remote-Ip", ip);
        if (cookie is not null) req.Headers.Add("Cookie", cookie);
        return await client.SendAsync(req);
    }

    List<TrackingEvent> EventsOf(string messageId) =>
        app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TrackedMessageId == Guid.Parse(messageId)).OrderBy(e => e.Id).ToList());

    List<VerdictChange> ChangesOf(string messageId) =>
        app.WithDb(db => db.VerdictChanges.AsNoTracking().Where(c => c.TrackedMessageId == Guid.Parse(messageId)).OrderBy(c => c.Id).ToList());

    static string Pixel(JsonElement reg, int copy = 0) => reg.GetProperty("copies")[copy].GetProperty("pixelUrl").GetString()!;
    static string Link(JsonElement reg, int copy = 0, int link = 0) => reg.GetProperty("copies")[copy].GetProperty("links")[link].GetProperty("trackedUrl").GetString()!;
    static string Honeypot(JsonElement reg)
    {
        var doc = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(reg.GetProperty("copies")[0].GetProperty("html").GetString()!);
        return doc.QuerySelectorAll("a[aria-hidden=true]").Single().GetAttribute("href")!;
    }

    [Fact]
    public async Task The_pixel_answers_a_gif_with_no_store_and_records_a_human_open()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var res = await Hit(app.Anonymous(), Pixel(reg), ip: "203.0.113.7");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("image/gif", res.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no-store", res.Headers.CacheControl!.ToString());
        var bytes = await res.Content.ReadAsByteArrayAsync();
        Assert.Equal("GIF89a", System.Text.Encoding.ASCII.GetString(bytes, 0, 6));

        var e = Assert.Single(EventsOf(reg.GetProperty("id").GetString()!));
        Assert.Equal(EventKind.Open, e.Kind);
        Assert.Equal(Verdict.Human, e.Verdict);
        Assert.Equal("203.0.113.7", e.Ip);
        Assert.Equal(Outlook, e.UserAgent);
        Assert.NotNull(e.RecipientId);

        var detail = await user.Client.GetJsonAsync($"/api/messages/{reg.GetProperty("id").GetString()}");
        Assert.Equal(1, detail.GetProperty("message").GetProperty("recipients")[0].GetProperty("counts").GetProperty("opens").GetInt32());
    }

    [Fact]
    public async Task Tracking_answers_carry_their_own_strict_headers_as_they_skip_the_web_apps_middleware()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var answers = new (string What, HttpResponseMessage Response)[]
        {
            ("pixel", await Hit(app.Anonymous(), Pixel(reg))),
            ("pixel, unknown token", await app.Anonymous().GetAsync("/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif")),
            ("click", await Hit(app.Anonymous(), Link(reg), ua: Chrome)),
            ("click, unknown token", await app.Anonymous().GetAsync("/c/AAAAAAAAAAAAAAAAAAAAAAAA")),
            ("honeypot", await Hit(app.Anonymous(), Honeypot(reg), ua: Chrome)),
        };
        foreach (var (what, res) in answers)
        {
            // The web app's own policy (SecurityHeaders) would replace this one if the request went through it.
            Assert.True(res.Headers.TryGetValues("Content-Security-Policy", out var csp), what);
            Assert.Equal(EmailTracking.Server.Tracking.TrackingApi.Csp, Assert.Single(csp));
            Assert.Equal("nosniff", Assert.Single(res.Headers.GetValues("X-Content-Type-Options")));
            Assert.Equal("DENY", Assert.Single(res.Headers.GetValues("X-Frame-Options")));
            Assert.Equal("no-referrer", Assert.Single(res.Headers.GetValues("Referrer-Policy")));
            Assert.Contains("no-store", res.Headers.CacheControl!.ToString());
        }
        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.Redirect, HttpStatusCode.NotFound, HttpStatusCode.OK),
            (answers[0].Response.StatusCode, answers[1].Response.StatusCode, answers[2].Response.StatusCode, answers[3].Response.StatusCode, answers[4].Response.StatusCode));
    }

    [Fact]
    public async Task The_recorder_reports_each_group_commit_and_each_hits_wait_on_its_meter()
    {
        var sizes = new System.Collections.Concurrent.ConcurrentQueue<int>();
        var times = new System.Collections.Concurrent.ConcurrentQueue<double>();
        var waits = new System.Collections.Concurrent.ConcurrentQueue<double>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == EmailTracking.Server.Tracking.EventRecorder.MeterName) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) =>
        {
            if (instrument.Name == "et.recorder.batch.size") sizes.Enqueue(value);
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument.Name == "et.recorder.commit.duration") times.Enqueue(value);
            if (instrument.Name == "et.recorder.hit.wait") waits.Enqueue(value);
        });
        listener.Start();

        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        Assert.Equal(HttpStatusCode.OK, (await Hit(app.Anonymous(), Pixel(reg))).StatusCode);

        // The answer goes out after the commit, and the commit is measured before its hits are released.
        Assert.Contains(sizes, s => s >= 1);
        Assert.Contains(times, t => t > 0);
        // Every hit of a batch waited at least as long as the commit itself took.
        Assert.Contains(waits, w => w > 0);
        Assert.True(waits.Max() >= times.Min(), $"hit waits {string.Join(", ", waits)} against commits {string.Join(", ", times)}");
    }

    [Fact]
    public async Task Unknown_and_malformed_pixel_tokens_still_get_the_gif_and_record_nothing()
    {
        var before = app.WithDb(db => db.Events.Count());
        foreach (var path in new[] { "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif", "/o/short.gif", "/o/..%2F..%2Fetc%2Fpasswd", "/o/" + new string('a', 3000), "/o/%F0%9F%98%80", "/o/x.gif?x=<script>" })
        {
            var res = await app.Anonymous().GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Equal("image/gif", res.Content.Headers.ContentType?.MediaType);
        }
        Assert.Equal(before, app.WithDb(db => db.Events.Count()));
    }

    [Fact]
    public async Task A_user_agent_cut_at_its_limit_in_the_middle_of_an_emoji_is_still_recorded()
    {
        // Kestrel decodes a UTF-8 user agent, so an emoji arrives as two UTF-16 halves; here they straddle the 1024th
        // character, where the recorded user agent is cut. PostgreSQL refuses text with half an emoji: the whole batch
        // (this hit and any other that committed with it) was lost.
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var ua = Chrome + " " + new string('x', 1023 - Chrome.Length - 1) + "\U0001F4A9 (tail)";
        Assert.True(char.IsHighSurrogate(ua[1023]));
        var res = await Hit(app.Anonymous(), Pixel(reg), ua: ua);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var e = Assert.Single(EventsOf(reg.GetProperty("id").GetString()!));
        Assert.Equal(ua[..1023], e.UserAgent);
    }

    [Fact]
    public async Task A_head_request_is_answered_and_never_counts_as_an_open()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var res = await Hit(app.Anonymous(), Pixel(reg), method: "HEAD");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("image/gif", res.Content.Headers.ContentType?.MediaType);
        Assert.Empty(await res.Content.ReadAsByteArrayAsync());
        var e = Assert.Single(EventsOf(reg.GetProperty("id").GetString()!));
        Assert.NotEqual(Verdict.Human, e.Verdict);
        Assert.Equal("HEAD", e.Method);
    }

    [Fact]
    public async Task A_click_redirects_to_the_stored_target_and_an_unknown_one_is_a_plain_404()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var res = await Hit(app.Anonymous(), Link(reg), ua: Chrome);
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.Equal("https://example.com/pricing", res.Headers.Location!.ToString());
        var e = Assert.Single(EventsOf(reg.GetProperty("id").GetString()!));
        Assert.Equal((EventKind.Click, Verdict.Human), (e.Kind, e.Verdict));
        Assert.NotNull(e.LinkId);

        foreach (var path in new[] { "/c/AAAAAAAAAAAAAAAAAAAAAAAA", "/c/https:%2F%2Fevil.test", "/c/..%2F..%2F", "/c/" + new string('z', 5000) })
        {
            var bad = await app.Anonymous().GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, bad.StatusCode);
            Assert.Null(bad.Headers.Location);
            Assert.Equal("text/html", bad.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task The_senders_own_device_is_self_even_from_a_browser_user_agent()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new { from = user.Email, subject = "note to self", to = new[] { user.Email }, html = "<p><a href=\"https://example.com/a\">a</a></p>", sentAt = DateTimeOffset.UtcNow.AddHours(-1) });
        var cookie = app.Services.GetRequiredService<DeviceCookie>().Protect(user.Id);
        await Hit(app.Anonymous(), Pixel(reg), ua: Chrome, cookie: $"{DeviceCookie.Name}={cookie}");
        await Hit(app.Anonymous(), Link(reg), ua: Chrome, cookie: $"{DeviceCookie.Name}={cookie}");
        var events = EventsOf(reg.GetProperty("id").GetString()!);
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(Verdict.Self, e.Verdict));

        // Another user's device mark, or a forged one, is not the sender's.
        var other = await app.NewUserAsync();
        var theirs = app.Services.GetRequiredService<DeviceCookie>().Protect(other.Id);
        await Hit(app.Anonymous(), Pixel(reg), ua: Chrome, cookie: $"{DeviceCookie.Name}={theirs}");
        await Hit(app.Anonymous(), Pixel(reg), ua: Chrome, cookie: $"{DeviceCookie.Name}=forged{cookie[6..]}");
        Assert.Equal([Verdict.Self, Verdict.Self, Verdict.Human, Verdict.Human], EventsOf(reg.GetProperty("id").GetString()!).Select(e => e.Verdict));

        var detail = await user.Client.GetJsonAsync($"/api/messages/{reg.GetProperty("id").GetString()}");
        var counts = detail.GetProperty("message").GetProperty("counts");
        Assert.Equal(2, counts.GetProperty("opens").GetInt32());
        Assert.Equal(0, counts.GetProperty("clicks").GetInt32());
        // The sender's own open and click are neither a person's nor a machine's: counted apart from both.
        Assert.Equal((0, 0, 0), (counts.GetProperty("machineOpens").GetInt32(), counts.GetProperty("machineClicks").GetInt32(),
            counts.GetProperty("machineEvents").GetInt32()));
        Assert.Equal((1, 1, 2), (counts.GetProperty("selfOpens").GetInt32(), counts.GetProperty("selfClicks").GetInt32(),
            counts.GetProperty("ownViews").GetInt32()));
        Assert.Equal(0, detail.GetProperty("hiddenMachineEvents").GetInt32());
        Assert.Equal(2, detail.GetProperty("hiddenOwnViews").GetInt32());
        Assert.Equal(2, detail.GetProperty("events").GetArrayLength());
        var recipient = detail.GetProperty("message").GetProperty("recipients")[0].GetProperty("counts");
        Assert.Equal((0, 2), (recipient.GetProperty("machineEvents").GetInt32(), recipient.GetProperty("ownViews").GetInt32()));
        // Shown on demand with the machines'.
        var all = await user.Client.GetJsonAsync($"/api/messages/{reg.GetProperty("id").GetString()}?machines=true");
        Assert.Equal(2, all.GetProperty("events").EnumerateArray().Count(e => e.GetProperty("verdict").GetString() == "self"));
        Assert.Equal((0, 0), (all.GetProperty("hiddenMachineEvents").GetInt32(), all.GetProperty("hiddenOwnViews").GetInt32()));
        // The list answers the same counts.
        var listed = (await user.Client.GetJsonAsync("/api/messages")).EnumerateArray()
            .Single(m => m.GetProperty("id").GetString() == reg.GetProperty("id").GetString()).GetProperty("counts");
        Assert.Equal((0, 0, 2), (listed.GetProperty("machineOpens").GetInt32(), listed.GetProperty("machineClicks").GetInt32(), listed.GetProperty("ownViews").GetInt32()));
    }

    [Fact]
    public async Task The_honeypot_link_betrays_a_scanner()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var res = await Hit(app.Anonymous(), Honeypot(reg), ua: Chrome);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Null(res.Headers.Location);
        var e = Assert.Single(EventsOf(reg.GetProperty("id").GetString()!));
        Assert.Equal(Verdict.Scanner, e.Verdict);
    }

    [Fact]
    public async Task Every_link_clicked_within_one_second_is_a_scanner_including_the_first()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: "<a href=\"https://example.com/1\">1</a><a href=\"https://example.com/2\">2</a><a href=\"https://example.com/3\">3</a>");
        for (var i = 0; i < 3; i++) await Hit(app.Anonymous(), Link(reg, link: i), ua: Chrome);
        var events = EventsOf(reg.GetProperty("id").GetString()!);
        Assert.Equal(3, events.Count);
        Assert.All(events, e => Assert.Equal(Verdict.Scanner, e.Verdict));
        // Only the first was recorded as a person's; it alone is taken back, once, for the live feeds.
        var change = Assert.Single(ChangesOf(reg.GetProperty("id").GetString()!));
        Assert.Equal((events[0].Id, Verdict.Human, Verdict.Scanner, EventKind.Click), (change.EventId, change.From, change.To, change.Kind));
        Assert.Equal((events[0].TeamId, events[0].UserId, events[0].RecipientId), (change.TeamId, change.UserId, change.RecipientId));
    }

    [Fact]
    public async Task Links_fetched_all_at_once_are_a_scanner_even_when_no_click_saw_the_others()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: string.Concat(Enumerable.Range(0, 6).Select(i => $"<a href=\"https://example.com/{i}\">{i}</a>")));
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Hit(app.Anonymous(), Link(reg, link: i), ua: Chrome)));
        var events = EventsOf(reg.GetProperty("id").GetString()!);
        Assert.Equal(6, events.Count);
        Assert.All(events, e => Assert.Equal(Verdict.Scanner, e.Verdict));
    }

    [Fact]
    public async Task A_link_with_non_ascii_characters_redirects_to_its_ascii_form()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: "<a href=\"https://a.test/café&#10;?q=ü\">x</a>");
        var res = await Hit(app.Anonymous(), Link(reg), ua: Chrome);
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.Equal("https://a.test/caf%C3%A9?q=%C3%BC", res.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task A_click_seconds_after_sending_is_a_scanner()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new { from = user.Email, subject = "s", to = new[] { "a@encom.test" }, html = "<a href=\"https://example.com/\">x</a>" });
        await Hit(app.Anonymous(), Link(reg), ua: Chrome);
        var e = Assert.Single(EventsOf(reg.GetProperty("id").GetString()!));
        Assert.Equal(Verdict.Scanner, e.Verdict);
        Assert.Contains("after sending", e.Reason);
    }

    [Fact]
    public async Task The_first_gmail_proxy_fetch_is_a_human_open_later_ones_are_cache_effects()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        for (var i = 0; i < 3; i++) await Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, ip: "66.249.84.1");
        Assert.Equal([Verdict.Human, Verdict.ProxyPrefetch, Verdict.ProxyPrefetch], EventsOf(reg.GetProperty("id").GetString()!).Select(e => e.Verdict));
    }

    [Fact]
    public async Task A_head_through_the_gmail_proxy_before_the_first_fetch_leaves_that_fetch_the_recipients_open()
    {
        // A HEAD (a bot) never was the message being displayed: the first GET after it is the open, not a repeat.
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        await Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, method: "HEAD", ip: "66.249.84.1");
        await Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, ip: "66.249.84.1");
        await Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, ip: "66.249.84.1");
        var id = reg.GetProperty("id").GetString()!;
        Assert.Equal([Verdict.Bot, Verdict.Human, Verdict.ProxyPrefetch], EventsOf(id).Select(e => e.Verdict));
        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        Assert.Equal(1, detail.GetProperty("message").GetProperty("counts").GetProperty("opens").GetInt32());
    }

    [Fact]
    public async Task Each_webmail_image_proxy_counts_its_own_first_fetch()
    {
        // Seznam's and Fastmail's proxies are two webmails: a fetch through one is no repeat of a fetch through the other.
        const string Seznam = "Mozilla/5.0 SeznamEmailProxy/0.0.1";
        const string Fastmail = "Mozilla/5.0 (compatible; FastmailUA/1.0)";
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(perRecipient: false, to: ["alan@encom.test", "lora@encom.test"]);
        await Hit(app.Anonymous(), Pixel(reg), ua: Seznam, ip: "77.75.77.1");
        await Hit(app.Anonymous(), Pixel(reg), ua: Fastmail, ip: "103.168.172.1");
        await Hit(app.Anonymous(), Pixel(reg), ua: Seznam, ip: "77.75.77.1");
        var events = EventsOf(reg.GetProperty("id").GetString()!);
        Assert.Equal([Verdict.Human, Verdict.Human, Verdict.ProxyPrefetch], events.Select(e => e.Verdict));
        Assert.Equal("first Fastmail image-proxy fetch: Fastmail fetches when the message is displayed", events[1].Reason);
        Assert.Equal("repeat fetch through the Seznam image proxy: a cache effect", events[2].Reason);
    }

    [Fact]
    public async Task A_gmail_proxy_fetch_after_hundreds_of_other_opens_of_the_copy_is_still_seen_as_a_repeat()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        // A much-read copy (one body shared by a team): 210 opens from other mail clients before Gmail's.
        for (var i = 0; i < 7; i++)
        {
            await Task.WhenAll(Enumerable.Range(0, 30).Select(n => Hit(app.Anonymous(), Pixel(reg), ua: Chrome, ip: $"203.0.113.{i * 30 + n + 1}")));
        }
        await Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, ip: "66.249.84.1");
        await Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, ip: "66.249.84.1");
        var gmail = EventsOf(reg.GetProperty("id").GetString()!).Where(e => e.UserAgent == GoogleProxy).Select(e => e.Verdict);
        Assert.Equal([Verdict.Human, Verdict.ProxyPrefetch], gmail);
    }

    [Fact]
    public async Task Gmail_proxy_fetches_that_arrive_together_count_one_open()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Hit(app.Anonymous(), Pixel(reg), ua: GoogleProxy, ip: "66.249.84.1")));
        var events = EventsOf(reg.GetProperty("id").GetString()!);
        var verdicts = events.Select(e => e.Verdict).ToList();
        Assert.Equal(5, verdicts.Count);
        Assert.Equal(1, verdicts.Count(v => v == Verdict.Human));
        Assert.Equal(Verdict.Human, verdicts[0]);
        // Each fetch taken back after it was recorded as a person's is taken back once, never the one that stays.
        var changes = ChangesOf(reg.GetProperty("id").GetString()!);
        Assert.Equal(changes.Count, changes.Select(c => c.EventId).Distinct().Count());
        Assert.All(changes, c => Assert.Equal((Verdict.Human, Verdict.ProxyPrefetch), (c.From, c.To)));
        Assert.DoesNotContain(events[0].Id, changes.Select(c => c.EventId));
    }

    [Fact]
    public async Task Apple_mail_privacy_protection_is_a_proxy_prefetch_but_a_real_browser_on_relay_is_human()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var appleIp = File.ReadLines(SharedData.Path("apple-relay", "ipv4-ranges.txt")).First().Split('/')[0];
        await Hit(app.Anonymous(), Pixel(reg), ua: "Mozilla/5.0", ip: appleIp);
        await Hit(app.Anonymous(), Pixel(reg), ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ip: appleIp);
        Assert.Equal([Verdict.ProxyPrefetch, Verdict.Human], EventsOf(reg.GetProperty("id").GetString()!).Select(e => e.Verdict));
    }

    [Fact]
    public async Task Crawlers_are_bots_and_machine_events_are_counted_apart()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        await Hit(app.Anonymous(), Pixel(reg), ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        await Hit(app.Anonymous(), Pixel(reg), ua: Outlook);
        var id = reg.GetProperty("id").GetString();
        Assert.Equal([Verdict.Bot, Verdict.Human], EventsOf(id!).Select(e => e.Verdict));

        var detail = await user.Client.GetJsonAsync($"/api/messages/{id}");
        Assert.Equal(1, detail.GetProperty("events").GetArrayLength());
        Assert.Equal(1, detail.GetProperty("hiddenMachineEvents").GetInt32());
        Assert.Equal(0, detail.GetProperty("hiddenOwnViews").GetInt32());
        var counts = detail.GetProperty("message").GetProperty("counts");
        Assert.Equal(1, counts.GetProperty("opens").GetInt32());
        Assert.Equal(1, counts.GetProperty("machineOpens").GetInt32());
        Assert.Equal(0, counts.GetProperty("ownViews").GetInt32());
        var all = await user.Client.GetJsonAsync($"/api/messages/{id}?machines=true");
        Assert.Equal(2, all.GetProperty("events").GetArrayLength());
        Assert.Contains(all.GetProperty("events").EnumerateArray(), e => e.GetProperty("verdict").GetString() == "bot" && e.GetProperty("reason").GetString()!.Length > 0);
    }

    [Fact]
    public async Task Marking_a_message_sent_moves_the_scanner_window()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new { from = user.Email, subject = "s", to = new[] { "a@encom.test" }, html = "<a href=\"https://example.com/\">x</a>" });
        var id = reg.GetProperty("id").GetString();
        // Before the registration by less than the clock allowance (MessagesApi.SentAtClockSkew): a sender's clock behind ours.
        var res = await user.Client.PostAsync($"/api/messages/{id}/sent", System.Net.Http.Json.JsonContent.Create(new { sentAt = DateTimeOffset.UtcNow.AddMinutes(-4) }));
        Assert.Equal(HttpStatusCode.NoContent, res.StatusCode);
        await Hit(app.Anonymous(), Link(reg), ua: Chrome);
        Assert.Equal(Verdict.Human, Assert.Single(EventsOf(id!)).Verdict);
    }

    [Fact]
    public async Task A_send_time_ahead_of_the_servers_clock_is_taken_as_now()
    {
        // The Outlook add-in sends the moment Send was pressed by the sender's own clock: a clock that runs ahead made
        // every click until that time "clicked before the recorded send time", a scanner's, however long the reader took.
        var user = await app.NewUserAsync();
        var ahead = DateTimeOffset.UtcNow.AddMinutes(10);
        var reg = await user.RegisterSimpleAsync(html: "<a href=\"https://example.com/\">x</a>", sentAt: ahead);
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        Assert.True(app.WithDb(db => db.Messages.Single(m => m.Id == id).SentAt) <= DateTimeOffset.UtcNow);
        await Hit(app.Anonymous(), Link(reg), ua: Chrome);
        Assert.DoesNotContain("before the recorded send time", Assert.Single(EventsOf(id.ToString())).Reason);

        // Marked sent later, a clock ahead by less than the allowance (MessagesApi.SentAtClockSkew) is taken as now too.
        var res = await user.Client.PostAsync($"/api/messages/{id}/sent", System.Net.Http.Json.JsonContent.Create(new { sentAt = DateTimeOffset.UtcNow.AddMinutes(4) }));
        Assert.Equal(HttpStatusCode.NoContent, res.StatusCode);
        Assert.True(app.WithDb(db => db.Messages.Single(m => m.Id == id).SentAt) <= DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task Attribution_per_person_counts_each_recipient_and_a_shared_copy_counts_the_message()
    {
        var user = await app.NewUserAsync();
        var per = await user.RegisterSimpleAsync(to: ["a@encom.test", "b@encom.test"]);
        await Hit(app.Anonymous(), Pixel(per, 1));
        var detail = await user.Client.GetJsonAsync($"/api/messages/{per.GetProperty("id").GetString()}");
        var recipients = detail.GetProperty("message").GetProperty("recipients").EnumerateArray().ToDictionary(r => r.GetProperty("address").GetString()!, r => r.GetProperty("counts").GetProperty("opens").GetInt32());
        Assert.Equal(0, recipients["a@encom.test"]);
        Assert.Equal(1, recipients["b@encom.test"]);

        var shared = await user.RegisterSimpleAsync(perRecipient: false, to: ["a@encom.test", "b@encom.test"]);
        await Hit(app.Anonymous(), Pixel(shared));
        var sd = await user.Client.GetJsonAsync($"/api/messages/{shared.GetProperty("id").GetString()}");
        Assert.Equal(1, sd.GetProperty("message").GetProperty("counts").GetProperty("opens").GetInt32());
        Assert.Null(Assert.Single(EventsOf(shared.GetProperty("id").GetString()!)).RecipientId);
    }
}

public sealed class TrackingEndpointsOnSqlite(SqliteApp app) : TrackingEndpointTests(app), IClassFixture<SqliteApp>;

public sealed class TrackingEndpointsOnPostgres(PostgresApp app) : TrackingEndpointTests(app), IClassFixture<PostgresApp>;
