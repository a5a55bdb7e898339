using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Api;

public abstract class MessagesApiTests(AppFactory app)
{
    [Fact]
    public async Task Per_recipient_registration_gives_each_recipient_its_own_body_pixel_links_and_message_id()
    {
        var user = await app.NewUserAsync();
        var html = """
            <p>Hello <a href="https://encom.test/deck?x=1&amp;y=2">the deck</a>,
            <a href="mailto:sales@sender.test">mail us</a>, <a href="tel:+15550100">call</a>, <a href="#top">top</a>,
            <a href="https://encom.test/private" data-et-notrack>untracked</a> and <a href="https://encom.test/deck?x=1&amp;y=2">again</a>.</p>
            """;
        var body = await user.RegisterAsync(new
        {
            from = user.Email, subject = "Q3 proposal", to = new[] { "Flynn <flynn@flynnsarcade.test>" }, cc = new[] { "alan@encom.test" },
            bcc = new[] { "lora@encom.test" }, html, perRecipient = true,
        });

        var copies = body.GetProperty("copies").EnumerateArray().ToList();
        Assert.Equal(3, copies.Count);
        var messageIds = copies.Select(c => c.GetProperty("messageId").GetString()!).ToList();
        Assert.Equal(3, messageIds.Distinct().Count());
        Assert.All(messageIds, id => Assert.Matches("^<[0-9a-f]{32}@localhost>$", id));
        Assert.Equal(["flynn@flynnsarcade.test"], copies[0].GetProperty("recipients").EnumerateArray().Select(e => e.GetString()));

        var pixels = new HashSet<string>();
        var clickUrls = new HashSet<string>();
        var parser = new HtmlParser();
        foreach (var copy in copies)
        {
            var doc = parser.ParseDocument(copy.GetProperty("html").GetString()!);
            var anchors = doc.QuerySelectorAll("a").ToList();
            var hrefs = anchors.Select(a => a.GetAttribute("href")!).ToList();
            // Two tracked links (the same target twice is two links), mailto/tel/anchor/marked links untouched, one honeypot.
            Assert.Contains("mailto:sales@sender.test", hrefs);
            Assert.Contains("tel:+15550100", hrefs);
            Assert.Contains("#top", hrefs);
            Assert.Contains("https://encom.test/private", hrefs);
            Assert.DoesNotContain(anchors, a => a.HasAttribute("data-et-notrack"));
            Assert.DoesNotContain("https://encom.test/deck?x=1&y=2", hrefs);
            var tracked = hrefs.Where(h => h.StartsWith("http://localhost/c/", StringComparison.Ordinal)).ToList();
            Assert.Equal(3, tracked.Count);
            var honeypot = anchors.Single(a => a.GetAttribute("aria-hidden") == "true");
            Assert.Contains("display:none", honeypot.GetAttribute("style"));
            Assert.Equal("", honeypot.TextContent);
            foreach (var t in tracked) Assert.True(clickUrls.Add(t), "click URLs are unique per copy");

            // The pixel is the last element of the body.
            var last = doc.Body!.LastElementChild!;
            Assert.Equal("IMG", last.TagName);
            Assert.Equal(copy.GetProperty("pixelUrl").GetString(), last.GetAttribute("src"));
            Assert.True(pixels.Add(last.GetAttribute("src")!));
            Assert.Matches("^http://localhost/o/[A-Za-z0-9_-]{24}\\.gif$", last.GetAttribute("src"));

            var links = copy.GetProperty("links").EnumerateArray().ToList();
            Assert.Equal(2, links.Count);
            Assert.Equal("https://encom.test/deck?x=1&y=2", links[0].GetProperty("url").GetString());
        }

        // Targets are stored on the server, never in the URL.
        Assert.All(clickUrls, u => Assert.DoesNotContain("encom", u));
    }

    [Fact]
    public async Task Shared_registration_gives_one_body_for_everyone()
    {
        var user = await app.NewUserAsync();
        var body = await user.RegisterSimpleAsync(perRecipient: false, to: ["a@encom.test", "b@encom.test"]);
        var copy = Assert.Single(body.GetProperty("copies").EnumerateArray());
        Assert.Equal(2, copy.GetProperty("recipients").GetArrayLength());
        Assert.False(body.GetProperty("perRecipient").GetBoolean());
    }

    [Fact]
    public async Task A_whole_document_stays_a_document_and_a_fragment_stays_a_fragment()
    {
        var user = await app.NewUserAsync();
        var doc = await user.RegisterSimpleAsync(html: "<!doctype html><html><head><title>x</title></head><body><p>Hi</p></body></html>");
        Assert.StartsWith("<!DOCTYPE html><html><head><title>x</title>", doc.GetProperty("copies")[0].GetProperty("html").GetString());
        var fragment = await user.RegisterSimpleAsync(html: "<p>Hi</p>");
        Assert.StartsWith("<p>Hi</p><a ", fragment.GetProperty("copies")[0].GetProperty("html").GetString());
    }

    [Fact]
    public async Task A_fragments_leading_style_survives_and_non_ascii_targets_are_stored_as_ascii()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: "<style>p{color:red}</style><meta name=x content=y><p>Hi <a href=\"https://例え.jp/café?q=ü\">x</a></p>");
        var html = reg.GetProperty("copies")[0].GetProperty("html").GetString()!;
        Assert.StartsWith("<style>p{color:red}</style><meta name=\"x\" content=\"y\"><p>Hi", html);
        var target = reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("url").GetString()!;
        Assert.Equal("https://xn--r8jz45g.jp/caf%C3%A9?q=%C3%BC", target);
    }

    [Fact]
    public async Task Links_of_an_image_map_are_tracked_like_any_other_link()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync(html: """
            <img src="https://encom.test/banner.png" usemap="#banner" alt="Offers">
            <map name="banner"><area shape="rect" coords="0,0,300,100" href="https://encom.test/offer" alt="Offer">
            <area shape="rect" coords="300,0,600,100" href="#top" alt="Top"></map>
            """);
        var copy = reg.GetProperty("copies")[0];
        var doc = new HtmlParser().ParseDocument(copy.GetProperty("html").GetString()!);
        var areas = doc.QuerySelectorAll("area").Select(a => a.GetAttribute("href")!).ToList();
        Assert.StartsWith("http://localhost/c/", areas[0], StringComparison.Ordinal);
        Assert.Equal("#top", areas[1]);
        Assert.Equal(["https://encom.test/offer"], copy.GetProperty("links").EnumerateArray().Select(l => l.GetProperty("url").GetString()));
    }

    [Fact]
    public async Task Relative_links_under_a_base_address_are_tracked_as_where_they_lead_and_without_one_stay_as_written()
    {
        var user = await app.NewUserAsync();
        // Newsletter tools write relative links under a <base>; Outlook, Apple Mail and Thunderbird follow them there.
        var reg = await user.RegisterSimpleAsync(html: """
            <html><head><base href="https://encom.test/news/"></head><body>
            <a href="pricing?plan=team">Pricing</a> <a href="/about">About</a> <a href="//cdn.encom.test/deck.pdf">Deck</a>
            <a href="#top">Top</a> <a href="mailto:sales@encom.test">Mail us</a> <a href="https://flynn.test/x">Elsewhere</a>
            <a href="javascript:alert(1)">Bad</a>
            </body></html>
            """);
        var copy = reg.GetProperty("copies")[0];
        Assert.Equal(["https://encom.test/news/pricing?plan=team", "https://encom.test/about", "https://cdn.encom.test/deck.pdf", "https://flynn.test/x"],
            copy.GetProperty("links").EnumerateArray().Select(l => l.GetProperty("url").GetString()));
        var hrefs = new HtmlParser().ParseDocument(copy.GetProperty("html").GetString()!).QuerySelectorAll("a[href]")
            .Select(a => a.GetAttribute("href")!).ToList();
        Assert.Equal(["#top", "mailto:sales@encom.test", "javascript:alert(1)"], hrefs.Where(h => !h.StartsWith("http://localhost/c/", StringComparison.Ordinal)));

        // Without a base, a relative link has nowhere known to lead: left as written.
        var plain = await user.RegisterSimpleAsync(html: """<p><a href="pricing">Pricing</a> <a href="https://encom.test/">Home</a></p>""");
        Assert.Equal(["https://encom.test/"], plain.GetProperty("copies")[0].GetProperty("links").EnumerateArray().Select(l => l.GetProperty("url").GetString()));
    }

    [Fact]
    public async Task Every_address_given_is_kept_or_refused_and_names_read_as_mail_clients_write_them()
    {
        var user = await app.NewUserAsync();
        // Two addresses pasted into one entry: refused by name, never one of them dropped while the other is sent.
        var res = await user.Client.PostAsJsonAsync("/api/messages", new
        {
            from = user.Email, subject = "s", to = new[] { "alan@encom.test, lora@encom.test" }, html = "<p>x</p>",
        });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text}");
        Assert.Contains("alan@encom.test, lora@encom.test", JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("recipients")[0].GetString());

        // A quoted name's escapes and an RFC 2047 encoded name are what they say; an unquoted comma stays in the name.
        var reg = await user.RegisterAsync(new
        {
            from = user.Email, subject = "s", html = "<p>x</p>",
            to = new[] { "\"O'Brien \\\"Bob\\\"\" <bob@encom.test>", "=?utf-8?B?Sm9zw6kgTsO6w7Fleg==?= <jose@encom.test>", "Smith, John <john@encom.test>" },
        });
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        var names = app.WithDb(db => db.Recipients.Where(r => r.TrackedMessageId == id).ToDictionary(r => r.Address, r => r.Name));
        Assert.Equal("O'Brien \"Bob\"", names["bob@encom.test"]);
        Assert.Equal("José Núñez", names["jose@encom.test"]);
        Assert.Equal("Smith, John", names["john@encom.test"]);
    }

    [Fact]
    public async Task A_recipients_name_longer_than_its_column_is_refused_by_name_never_a_500()
    {
        // PostgreSQL refused the insert (a 500) and SQLite kept it: the entry, short enough to be read as an address, held a
        // name longer than a recipient's name is kept.
        var user = await app.NewUserAsync();
        var entry = new string('N', 250) + " <long@encom.test>";
        var res = await user.Client.PostAsJsonAsync("/api/messages", new { from = user.Email, subject = "s", to = new[] { entry }, html = "<p>x</p>" });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text}");
        Assert.Contains("name longer than 200 characters", JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("recipients")[0].GetString());
        Assert.False(app.WithDb(db => db.Recipients.Any(r => r.Address == "long@encom.test")));

        var reg = await user.RegisterAsync(new { from = user.Email, subject = "s", to = new[] { new string('N', 200) + " <fits@encom.test>" }, html = "<p>x</p>" });
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        Assert.Equal(200, app.WithDb(db => db.Recipients.Single(r => r.TrackedMessageId == id).Name!.Length));
    }

    [Fact]
    public async Task One_mailbox_with_its_domain_in_punycode_and_in_unicode_is_one_recipient_kept_as_first_written()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new
        {
            from = user.Email, subject = "s", html = "<p><a href=\"https://encom.test/\">x</a></p>", perRecipient = true,
            to = new[] { "Zoe <zoe@xn--r8jz45g.jp>" }, cc = new[] { "ZOE@例え.JP", "kai@例え.jp" }, bcc = new[] { "kai@XN--R8JZ45G.jp" },
        });
        var copies = reg.GetProperty("copies").EnumerateArray().Select(c => c.GetProperty("recipients")[0].GetString()).ToList();
        Assert.Equal(["zoe@xn--r8jz45g.jp", "kai@例え.jp"], copies);
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        var stored = app.WithDb(db => db.Recipients.Where(r => r.TrackedMessageId == id).OrderBy(r => r.Role).Select(r => new { r.Address, r.Name, r.Role }).ToList());
        Assert.Equal(2, stored.Count);
        Assert.Equal(("zoe@xn--r8jz45g.jp", "Zoe", RecipientRole.To), (stored[0].Address, stored[0].Name, stored[0].Role));
        Assert.Equal(("kai@例え.jp", RecipientRole.Cc), (stored[1].Address, stored[1].Role));
    }

    [Fact]
    public async Task An_address_given_twice_is_one_recipient_in_its_most_visible_field_with_the_name_given_for_it()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new
        {
            from = user.Email, subject = "s", html = "<p>x</p>", perRecipient = true,
            to = new[] { "alan@encom.test", "Lora <lora@encom.test>" },
            cc = new[] { "Alan Bradley <ALAN@encom.test>", "Lora Baines <lora@encom.test>" },
            bcc = new[] { "lora@encom.test" },
        });
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        var stored = app.WithDb(db => db.Recipients.Where(r => r.TrackedMessageId == id).OrderBy(r => r.Address).Select(r => new { r.Address, r.Name, r.Role }).ToList());
        Assert.Equal(2, reg.GetProperty("copies").GetArrayLength());
        Assert.Equal(2, stored.Count);
        // The name written with the address elsewhere is not lost; a name already given stays.
        Assert.Equal(("alan@encom.test", "Alan Bradley", RecipientRole.To), (stored[0].Address, stored[0].Name, stored[0].Role));
        Assert.Equal(("lora@encom.test", "Lora", RecipientRole.To), (stored[1].Address, stored[1].Name, stored[1].Role));
    }

    [Fact]
    public async Task Bodies_that_would_cost_too_much_are_refused_with_a_reason()
    {
        var user = await app.NewUserAsync();
        async Task<string> Refused(object body)
        {
            var res = await user.Client.PostAsJsonAsync("/api/messages", body);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            return JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").GetProperty("html")[0].GetString()!;
        }
        var nested = string.Concat(Enumerable.Repeat("<div>", 25_000));
        Assert.Contains("more than 20000 tags", await Refused(new { from = user.Email, subject = "s", to = new[] { "a@b.test" }, html = nested }));
        var links = string.Concat(Enumerable.Range(0, 501).Select(i => $"<a href=\"https://x.test/{i}\">{i}</a>"));
        Assert.Contains("at most 500", await Refused(new { from = user.Email, subject = "s", to = new[] { "a@b.test" }, html = links }));
        var big = "<p>" + new string('x', 200_000) + "</p>";
        var many = Enumerable.Range(0, 200).Select(i => $"r{i}@b.test").ToArray();
        Assert.Contains("perRecipient: false", await Refused(new { from = user.Email, subject = "s", to = many, html = big, perRecipient = true }));
        // The same body as one shared copy is fine.
        var ok = await user.Client.PostAsJsonAsync("/api/messages", new { from = user.Email, subject = "s", to = many, html = big, perRecipient = false });
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);

        // 200 copies × (50 links + the honeypot) = 10,200 link rows in one transaction: more than the 10,000 a
        // registration may write while every team's hits wait for SQLite's write lock.
        var fifty = string.Concat(Enumerable.Range(0, 50).Select(i => $"<a href=\"https://x.test/{i}\">{i}</a> "));
        var before = app.WithDb(db => db.Messages.Count());
        var tooMany = await Refused(new { from = user.Email, subject = "s", to = many, html = fifty, perRecipient = true });
        Assert.Contains("10200 links", tooMany);
        Assert.Contains("at most 10000", tooMany);
        Assert.Equal(before, app.WithDb(db => db.Messages.Count()));
        // 195 copies × 51 = 9,945 fit.
        var fits = await user.Client.PostAsJsonAsync("/api/messages", new { from = user.Email, subject = "s", to = many[..195], html = fifty, perRecipient = true });
        Assert.Equal(HttpStatusCode.Created, fits.StatusCode);
    }

    [Fact]
    public async Task The_list_comes_in_the_order_its_pages_go_newest_registered_first()
    {
        var user = await app.NewUserAsync();
        // Registered first but sent last, then registered last but sent a day ago.
        var first = (await user.RegisterSimpleAsync(sentAt: DateTimeOffset.UtcNow.AddMinutes(-1))).GetProperty("id").GetString();
        await Task.Delay(20);
        var second = (await user.RegisterSimpleAsync(sentAt: DateTimeOffset.UtcNow.AddDays(-1))).GetProperty("id").GetString();
        var all = await user.Client.GetJsonAsync("/api/messages");
        Assert.Equal([second, first], all.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        // The same order one page at a time.
        var one = await user.Client.GetJsonAsync("/api/messages?take=1");
        Assert.Equal(second, one[0].GetProperty("id").GetString());
        var before = Uri.EscapeDataString(one[0].GetProperty("createdAt").GetString()!);
        Assert.Equal(first, (await user.Client.GetJsonAsync($"/api/messages?take=1&before={before}"))[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task Paging_with_a_time_in_another_offset_means_the_same_instant()
    {
        var user = await app.NewUserAsync();
        await user.RegisterSimpleAsync();
        var inAnHour = DateTimeOffset.UtcNow.AddHours(1).ToOffset(TimeSpan.FromHours(5));
        var anHourAgo = DateTimeOffset.UtcNow.AddHours(-1).ToOffset(TimeSpan.FromHours(-7));
        Assert.Equal(1, (await user.Client.GetJsonAsync($"/api/messages?before={Uri.EscapeDataString(inAnHour.ToString("O"))}")).GetArrayLength());
        Assert.Equal(0, (await user.Client.GetJsonAsync($"/api/messages?before={Uri.EscapeDataString(anHourAgo.ToString("O"))}")).GetArrayLength());
    }

    [Fact]
    public async Task Messages_registered_at_the_same_instant_are_each_listed_once_across_pages()
    {
        var user = await app.NewUserAsync();
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++) ids.Add((await user.RegisterSimpleAsync()).GetProperty("id").GetGuid());
        // Registered by a script in parallel: the same instant, as the database keeps it (SQLite to a tenth of a millisecond).
        var instant = new DateTimeOffset(2026, 11, 30, 9, 15, 0, TimeSpan.Zero);
        await app.WithDbAsync(db => db.Messages.Where(m => ids.Contains(m.Id)).ExecuteUpdateAsync(u => u.SetProperty(m => m.CreatedAt, instant)));

        // Pages of two, each from the last message of the page before: all five, each once.
        var seen = new List<Guid>();
        var url = "/api/messages?take=2";
        for (var pages = 0; pages < 10; pages++)
        {
            var page = (await user.Client.GetJsonAsync(url)).EnumerateArray().ToList();
            if (page.Count == 0) break;
            seen.AddRange(page.Select(m => m.GetProperty("id").GetGuid()));
            var last = page[^1];
            url = $"/api/messages?take=2&before={Uri.EscapeDataString(last.GetProperty("createdAt").GetString()!)}&beforeId={last.GetProperty("id").GetGuid()}";
        }
        Assert.Equal(ids.Order(), seen.Order());
        // In one order from the first page to the last: the order of the whole list.
        Assert.Equal((await user.Client.GetJsonAsync("/api/messages")).EnumerateArray().Select(m => m.GetProperty("id").GetGuid()), seen);

        // An id without a time is a mistake, said so.
        var res = await user.Client.GetAsync($"/api/messages?beforeId={ids[0]}");
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Contains("beforeId", await res.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Invalid_registrations_get_problem_details_and_store_nothing()
    {
        var user = await app.NewUserAsync();
        var before = app.WithDb(db => db.Messages.Count());
        async Task<JsonElement> Bad(object body, string field)
        {
            var res = await user.Client.PostAsJsonAsync("/api/messages", body);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
            var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"expected an error on {field}: {problem}");
            return problem;
        }
        await Bad(new { from = user.Email, subject = "s", to = Array.Empty<string>(), html = "<p>x</p>" }, "recipients");
        await Bad(new { from = user.Email, subject = "s", to = new[] { "not an address" }, html = "<p>x</p>" }, "recipients");
        await Bad(new { from = "someone-else@sender.test", subject = "s", to = new[] { "a@b.test" }, html = "<p>x</p>" }, "from");
        await Bad(new { from = user.Email, subject = "s", to = new[] { "a@b.test" }, html = "" }, "html");
        await Bad(new { from = user.Email, to = new[] { "a@b.test" }, html = "<p>x</p>" }, "subject");
        await Bad(new { from = user.Email, subject = "s", to = new[] { "a@b.test" }, html = new string('x', 2 * 1024 * 1024 + 1) }, "html");

        // Malformed JSON is a 400 problem too, saying where the body went wrong.
        async Task<string> Unreadable(string body)
        {
            var res = await user.Client.PostAsync("/api/messages", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
            return JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString()!;
        }
        Assert.Contains("at $.from (line 1, byte 10)", await Unreadable("{\"from\": x}"));
        Assert.Equal("The value is not of the expected type at $.to (line 1, byte 18).", await Unreadable("{\"to\": \"a@b.test\"}"));
        Assert.Contains("end of the JSON", await Unreadable("{\"from\": "), StringComparison.OrdinalIgnoreCase);
        var plain = await user.Client.PostAsync("/api/messages", new StringContent("hello", System.Text.Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, plain.StatusCode);
        Assert.Equal(before, app.WithDb(db => db.Messages.Count()));
    }

    [Fact]
    public async Task A_send_time_long_before_the_registration_or_ahead_of_the_servers_clock_is_a_400_and_changes_nothing()
    {
        // {"sentAt":"0001-01-01T00:00:00Z"} was taken: every click then came long after "sending", past the scanner
        // window, and the message sorted before all others. A clock a few minutes off is still taken (5 minutes).
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new { from = user.Email, subject = "s", to = new[] { "a@b.test" }, html = "<p>x</p>" });
        var id = reg.GetProperty("id").GetGuid();
        var registered = app.WithDb(db => db.Messages.Single(m => m.Id == id).CreatedAt);
        Task<HttpResponseMessage> MarkAsync(DateTimeOffset at) => user.Client.PostAsJsonAsync($"/api/messages/{id}/sent", new { sentAt = at });

        foreach (var (at, says) in new[]
                 {
                     (DateTimeOffset.MinValue, "is before the message was registered"),
                     (registered.AddMinutes(-6), "is before the message was registered"),
                     (DateTimeOffset.UtcNow.AddMinutes(6), "is in the future"),
                     (DateTimeOffset.MaxValue, "is in the future"),
                 })
        {
            var res = await MarkAsync(at);
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{at:O}: {(int)res.StatusCode} {text}");
            Assert.Contains(says, JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("sentAt")[0].GetString());
            Assert.Null(app.WithDb(db => db.Messages.Single(m => m.Id == id).SentAt));
        }

        // Within the allowance: a clock behind is taken as it says, one ahead as now.
        var behind = registered.AddMinutes(-4);
        Assert.Equal(HttpStatusCode.NoContent, (await MarkAsync(behind)).StatusCode);
        Assert.Equal(behind, app.WithDb(db => db.Messages.Single(m => m.Id == id).SentAt));
        Assert.Equal(HttpStatusCode.NoContent, (await MarkAsync(DateTimeOffset.UtcNow.AddMinutes(4))).StatusCode);
        Assert.True(app.WithDb(db => db.Messages.Single(m => m.Id == id).SentAt) <= DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task Asking_a_list_for_fewer_than_one_item_is_a_400_and_more_than_its_most_answers_its_most()
    {
        // take=0 or -1 answered one message, as if one had been asked for. The lists read the same way: a count below
        // one is refused, naming the parameter; above the most a page holds, the most is answered.
        var user = await app.NewUserAsync();
        await user.RegisterSimpleAsync();
        await user.RegisterSimpleAsync();
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        await app.WithDbAsync(db => { db.Mailboxes.Add(mailbox); return db.SaveChangesAsync(); });
        foreach (var n in new[] { "0", "-1", "-2147483648" })
        {
            foreach (var (url, parameter) in new[] { ($"/api/messages?take={n}", "take"), ($"/api/outbox/deliveries?take={n}", "take"), ($"/api/mailboxes/{mailbox.Id}/unreadable?limit={n}", "limit") })
            {
                var res = await user.Client.GetAsync(url);
                var text = await res.Content.ReadAsStringAsync();
                Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{url}: {(int)res.StatusCode} {text}");
                Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
                Assert.Contains($"{parameter} is", text);
            }
        }
        Assert.Equal(1, (await user.Client.GetJsonAsync("/api/messages?take=1")).GetArrayLength());
        Assert.Equal(2, (await user.Client.GetJsonAsync("/api/messages?take=2147483647")).GetArrayLength());
        Assert.Equal(JsonValueKind.Array, (await user.Client.GetJsonAsync("/api/outbox/deliveries?take=2147483647")).ValueKind);
        Assert.Equal(JsonValueKind.Array, (await user.Client.GetJsonAsync($"/api/mailboxes/{mailbox.Id}/unreadable?limit=2147483647")).ValueKind);
    }

    [Fact]
    public async Task A_nul_character_in_a_subject_or_a_token_name_is_dropped_never_a_500()
    {
        // PostgreSQL text cannot hold U+0000 (and no mail header carries it): stored as sent, it failed the insert.
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new { from = user.Email, subject = "Pro\u0000posal", to = new[] { "a@b.test" }, html = "<p>x</p>" });
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        Assert.Equal("Proposal", app.WithDb(db => db.Messages.Single(m => m.Id == id).Subject));

        var created = await user.Client.PostAsJsonAsync("/api/tokens", new { name = "crm\u0000 sync" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("crm sync", JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_line_break_in_a_subject_is_a_space_never_two_words_glued_or_a_header_of_its_own()
    {
        // A subject pasted from a document can hold a line break. No header holds one: MimeKit drops it, which glued
        // "proposal" and "Bcc:" together in the mail the recipient got, and the pages showed another subject.
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new { from = user.Email, subject = "Q3 proposal\r\nBcc: lora@encom.test\tand more", to = new[] { "a@b.test" }, html = "<p>x</p>" });
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);
        var message = app.WithDb(db => db.Messages.Include(m => m.Recipients).Single(m => m.Id == id));
        Assert.Equal("Q3 proposal Bcc: lora@encom.test and more", message.Subject);

        var mime = EmailTracking.Server.Mailboxes.MailSender.Compose(new MimeKit.MailboxAddress(null, user.Email), message,
            reg.GetProperty("copies")[0].GetProperty("messageId").GetString()!, "<p>x</p>", null, DateTimeOffset.UtcNow);
        using var stream = new MemoryStream();
        mime.WriteTo(stream);
        stream.Position = 0;
        var received = MimeKit.MimeMessage.Load(stream);
        Assert.Equal("Q3 proposal Bcc: lora@encom.test and more", received.Subject);
        Assert.Empty(received.Bcc);
    }

    [Fact]
    public async Task An_alias_may_send_and_its_mail_is_the_users_own()
    {
        var user = await app.NewUserAsync();
        var add = await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = "Sales.Alias@Sender.test" });
        Assert.Equal(HttpStatusCode.NoContent, add.StatusCode);
        var res = await user.RegisterAsync(new { from = "sales.alias@sender.test", subject = "x", to = new[] { "a@b.test" }, html = "<p>x</p>" });
        Assert.Equal(JsonValueKind.String, res.GetProperty("id").ValueKind);
        var me = await user.Client.GetJsonAsync("/api/me");
        Assert.Contains("sales.alias@sender.test", me.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task An_alias_sends_with_its_domain_written_in_punycode_or_in_unicode()
    {
        var user = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = "Sales@例え.jp" })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = "info@xn--r8jz45g.test" })).StatusCode);
        foreach (var from in new[] { "sales@xn--r8jz45g.jp", "SALES@例え.JP", "info@例え.test" })
        {
            var res = await user.RegisterAsync(new { from, subject = "x", to = new[] { "a@b.test" }, html = "<p>x</p>" });
            var id = Guid.Parse(res.GetProperty("id").GetString()!);
            // Kept as written, like every address.
            Assert.Equal(from.ToLowerInvariant(), app.WithDb(db => db.Messages.Single(m => m.Id == id).FromAddress));
        }
    }

    [Fact]
    public async Task Without_a_token_the_api_answers_401()
    {
        var anon = app.Anonymous();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/api/messages")).StatusCode);
        anon.DefaultRequestHeaders.Authorization = new("Bearer", "et_forged-token-value");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/api/messages")).StatusCode);
        anon.DefaultRequestHeaders.Authorization = new("Bearer", new string('x', 5000));
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/api/messages")).StatusCode);
    }

    [Fact]
    public async Task Api_tokens_are_stored_hashed_and_can_be_revoked()
    {
        var user = await app.NewUserAsync();
        var created = await user.Client.PostAsJsonAsync("/api/tokens", new { name = "crm sync" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        var token = body.GetProperty("token").GetString()!;
        Assert.StartsWith("et_", token);
        Assert.True(token.Length >= 40);

        // Nothing in the database holds the token itself.
        var stored = app.WithDb(db => db.ApiTokens.AsNoTracking().Where(t => t.UserId == user.Id).ToList());
        Assert.DoesNotContain(stored, t => System.Text.Encoding.UTF8.GetString(t.Hash).Contains(token[3..20], StringComparison.Ordinal));
        Assert.All(stored, t => Assert.Equal(32, t.Hash.Length));

        using var second = app.Anonymous();
        second.DefaultRequestHeaders.Authorization = new("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync("/api/me")).StatusCode);
        var revoke = await user.Client.DeleteAsync($"/api/tokens/{body.GetProperty("id").GetString()}");
        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await second.GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task Another_team_never_sees_a_message_or_a_token_404_on_every_id()
    {
        var owner = await app.NewUserAsync();
        var stranger = await app.NewUserAsync(plan: Plan.Team);
        var msg = await owner.RegisterSimpleAsync();
        var id = msg.GetProperty("id").GetString();
        var token = JsonDocument.Parse(await (await owner.Client.PostAsJsonAsync("/api/tokens", new { name = "t" })).Content.ReadAsStringAsync())
            .RootElement.GetProperty("id").GetString();

        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.GetAsync($"/api/messages/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.GetAsync($"/api/messages/{id}?machines=true")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.PostAsJsonAsync($"/api/messages/{id}/sent", new { })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.DeleteAsync($"/api/tokens/{token}")).StatusCode);
        var list = await stranger.Client.GetJsonAsync("/api/messages");
        Assert.Equal(0, list.GetArrayLength());

        // The owner still sees it; the token was not revoked by the stranger's attempt.
        Assert.Equal(HttpStatusCode.OK, (await owner.Client.GetAsync($"/api/messages/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await owner.Client.DeleteAsync($"/api/tokens/{token}")).StatusCode);
    }

    [Fact]
    public async Task Within_a_team_members_see_their_own_messages_and_admins_see_all()
    {
        var admin = await app.NewUserAsync(); // first user of a new team: admin
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var other = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var msg = (await member.RegisterSimpleAsync()).GetProperty("id").GetString();

        Assert.Equal(HttpStatusCode.OK, (await admin.Client.GetAsync($"/api/messages/{msg}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.Client.GetAsync($"/api/messages/{msg}")).StatusCode);
    }

    [Fact]
    public async Task Swagger_documents_the_api()
    {
        var doc = await app.Anonymous().GetJsonAsync("/swagger/v1/swagger.json");
        var paths = doc.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/api/messages", out _));
        Assert.True(paths.TryGetProperty("/api/messages/{id}", out _));
        Assert.True(paths.TryGetProperty("/api/feed", out _));
        Assert.False(paths.TryGetProperty("/o/{token}", out _));
        var ui = await app.Anonymous().GetAsync("/swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, ui.StatusCode);
    }

    [Fact]
    public async Task Swagger_says_what_the_share_link_endpoints_take_and_what_a_confirmation_request_answers()
    {
        var doc = await app.Anonymous().GetJsonAsync("/swagger/v1/swagger.json");
        var paths = doc.GetProperty("paths");

        // The share link's settings are a JSON body: optional for a new link, required for a change.
        foreach (var (path, method, required) in new[] { ("/api/content/{id}/links", "post", false), ("/api/content/{id}/links/{token}", "patch", true) })
        {
            var operation = paths.GetProperty(path).GetProperty(method);
            Assert.True(operation.TryGetProperty("requestBody", out var body), $"{method} {path} documents no body");
            Assert.Equal(required, body.TryGetProperty("required", out var r) && r.GetBoolean());
            var schema = body.GetProperty("content").GetProperty("application/json").GetProperty("schema");
            if (schema.TryGetProperty("$ref", out var reference))
                schema = doc.GetProperty("components").GetProperty("schemas").GetProperty(reference.GetString()!.Split('/')[^1]);
            var fields = schema.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order();
            Assert.Equal(["allowDownload", "disabled", "expiresAt", "requireEmail", "verifyEmail"], fields);
            Assert.True(operation.GetProperty("responses").TryGetProperty("400", out _), $"{method} {path} documents no 400");
        }

        // A confirmation mail sent is a 202 (never a 200), and each refusal is documented.
        var answers = paths.GetProperty("/api/me/addresses/confirmation").GetProperty("post").GetProperty("responses")
            .EnumerateObject().Select(p => p.Name).Order();
        Assert.Equal(["202", "400", "404", "409", "429", "502", "503"], answers);
    }
}

public sealed class MessagesApiOnSqlite(SqliteApp app) : MessagesApiTests(app), IClassFixture<SqliteApp>;

public sealed class MessagesApiOnPostgres(PostgresApp app) : MessagesApiTests(app), IClassFixture<PostgresApp>;
