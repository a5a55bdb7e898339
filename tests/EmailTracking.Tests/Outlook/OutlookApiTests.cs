using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Outlook;
using EmailTracking.Server.Replies;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace EmailTracking.Tests.Outlook;

/// <summary>The task pane's endpoints, called with Microsoft tokens as the pane calls them.</summary>
public abstract class OutlookApiTests(OutlookApp app)
{
    /// <summary>What the on-send handler does: register the mail from the compose window as one shared copy.</summary>
    static async Task<(Guid Id, string Token, string PixelPath)> SendTrackedAsync(HttpClient pane, string from, bool perRecipient = false,
        string[]? to = null, string subject = "Quarterly numbers")
    {
        var res = await pane.PostAsJsonAsync("/api/messages", new
        {
            from, subject, to = to ?? new[] { "alan@encom.test", "lora@encom.test" },
            html = "<p>See <a href=\"https://encom.test/q3\">Q3</a></p>", perRecipient, source = "outlook-addin",
            sentAt = DateTimeOffset.UtcNow.AddHours(-1),
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        var body = JsonDocument.Parse(text).RootElement;
        var pixel = body.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
        // The header's value: the copy's pixel token, as in /o/{token}.gif.
        var token = new Uri(pixel).Segments[^1].Replace(".gif", "", StringComparison.Ordinal);
        return (body.GetProperty("id").GetGuid(), token, TestApi.Path(pixel));
    }

    /// <param name="from">The item's sender, as the read pane sends it with the header's token.</param>
    static string Item(string? token = null, string? internetMessageId = null, string? conversationId = null, string? from = null)
    {
        var q = new List<string>();
        if (token is not null) q.Add("token=" + Uri.EscapeDataString(token));
        if (internetMessageId is not null) q.Add("internetMessageId=" + Uri.EscapeDataString(internetMessageId));
        if (conversationId is not null) q.Add("conversationId=" + Uri.EscapeDataString(conversationId));
        if (from is not null) q.Add("from=" + Uri.EscapeDataString(from));
        return "/api/outlook/item?" + string.Join('&', q);
    }

    [Fact]
    public async Task Me_gives_the_plan_limits_and_the_tracking_default_which_the_user_can_change()
    {
        var user = await app.NewUserAsync(plan: Plan.Team);
        var pane = app.AsMicrosoftUser(user.Email);
        var me = await pane.GetJsonAsync("/api/outlook/me");
        Assert.Equal(user.Email, me.GetProperty("email").GetString());
        Assert.Equal([user.Email], me.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("team", me.GetProperty("plan").GetString());
        Assert.True(me.GetProperty("trackByDefault").GetBoolean());
        Assert.True(me.GetProperty("contentAllowed").GetBoolean());
        Assert.Equal(500, me.GetProperty("maxRecipients").GetInt32());

        var put = await pane.PutAsJsonAsync("/api/me/settings", new { trackByDefault = false });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.False((await pane.GetJsonAsync("/api/outlook/me")).GetProperty("trackByDefault").GetBoolean());

        var bad = await pane.PutAsJsonAsync("/api/me/settings", new { });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("application/problem+json", bad.Content.Headers.ContentType?.MediaType);
        var notJson = await pane.PutAsync("/api/me/settings", new StringContent("{\"trackByDefault\":\"maybe\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.False((await pane.GetJsonAsync("/api/outlook/me")).GetProperty("trackByDefault").GetBoolean());

        var solo = await app.NewUserAsync(plan: Plan.Solo);
        var soloMe = await app.AsMicrosoftUser(solo.Email).GetJsonAsync("/api/outlook/me");
        Assert.Equal("solo", soloMe.GetProperty("plan").GetString());
        Assert.False(soloMe.GetProperty("contentAllowed").GetBoolean());
    }

    [Fact]
    public async Task The_account_page_shows_and_changes_the_tracking_default()
    {
        const string password = "Correct-Horse-42";
        var user = await app.NewUserAsync(password: password);
        var browser = await EmailTracking.Tests.Graph.WebSession.SignInAsync(app, user.Email, password);
        static string Token(string html) => System.Text.RegularExpressions.Regex.Match(html,
            "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;

        var page = await browser.GetStringAsync("/tokens");
        Assert.Matches("<input type=\"checkbox\" name=\"TrackByDefault\" value=\"true\" checked=\"checked\"", page);
        // An unticked box sends nothing: tracking off.
        var res = await browser.PostAsync("/tokens?handler=Settings", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Token(page),
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.False((await app.AsMicrosoftUser(user.Email).GetJsonAsync("/api/outlook/me")).GetProperty("trackByDefault").GetBoolean());
        page = await browser.GetStringAsync("/tokens?saved=true");
        Assert.Contains("Settings saved.", page);
        Assert.DoesNotContain("checked", page);
    }

    public static TheoryData<string> BadItemQueries() =>
    [
        "/api/outlook/item",
        "/api/outlook/item?token=",
        "/api/outlook/item?token=short",
        "/api/outlook/item?internetMessageId=" + Uri.EscapeDataString("<has space@x>"),
        "/api/outlook/item?internetMessageId=" + new string('a', 600),
        "/api/outlook/item?conversationId=" + new string('c', 201),
        "/api/outlook/item?conversationId=%01abc",
        // Odd Unicode: nothing Outlook gives a message, answered as a bad query rather than looked up.
        "/api/outlook/item?internetMessageId=%3Cabc%E2%80%AEfdp%40x.test%3E", // right-to-left override
        "/api/outlook/item?internetMessageId=%3Cabc%E2%80%8B%40x.test%3E", // zero-width space
        "/api/outlook/item?internetMessageId=%3Cabc%C2%A0def%40x.test%3E", // no-break space
        "/api/outlook/item?internetMessageId=%3Cabc%E2%80%A8def%40x.test%3E", // line separator
        "/api/outlook/item?internetMessageId=%3Cabc%EF%BF%BDdef%40x.test%3E", // the replacement character: text that was not UTF-8
        "/api/outlook/item?internetMessageId=%3Cabc%EF%BF%BF%40x.test%3E", // a noncharacter
        "/api/outlook/item?internetMessageId=%3Ca%3Cb%40x.test%3E", // an angle bracket inside
        "/api/outlook/item?internetMessageId=%3C%3E",
        "/api/outlook/item?conversationId=AAQkAD%E2%80%AEAwATM0MDAAMS1i",
        "/api/outlook/item?conversationId=AAQk%20ADAw",
        "/api/outlook/item?conversationId=AAQk%25FFADAw", // not base64
        "/api/outlook/item?conversationId=AAQk%C3%A9ADAw",
        "/api/outlook/item?token=%EF%BC%A1AAAAAAAAAAAAAAAAAAAAAAA", // a fullwidth letter
        "/api/outlook/item?token=" + new string('A', 24) + "&token=" + new string('B', 24),
        "/api/outlook/item?token=" + new string('A', 24) + "&internetMessageId=" + new string('m', 501),
        "/api/outlook/item?bodyToken=short&from=kevin%40encom.test&subject=x",
        "/api/outlook/item?bodyToken=" + new string('A', 24), // without the sender and subject that decide whose mail it is
        "/api/outlook/item?bodyToken=" + new string('A', 24) + "&subject=x",
        "/api/outlook/item?bodyToken=" + new string('A', 24) + "&from=kevin%40encom.test&subject=" + new string('s', 1001),
    ];

    [Fact]
    public async Task Item_says_which_part_of_the_query_is_wrong()
    {
        var user = await app.NewUserAsync();
        var res = await app.AsMicrosoftUser(user.Email).GetAsync("/api/outlook/item?token=" + new string('A', 24) +
                                                                 "&internetMessageId=%3Cabc%E2%80%8B%40x.test%3E&conversationId=AAQk%20ADAw");
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        var errors = (await res.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors");
        Assert.Equal(["conversationId", "internetMessageId"], errors.EnumerateObject().Select(p => p.Name).Order());
    }

    [Fact]
    public async Task Item_takes_message_ids_as_outlook_and_other_mailers_write_them()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        foreach (var id in new[] { "<DM6PR11MB0001.1@DM6PR11MB0001.namprd11.prod.outlook.com>", "CAF=x+y/z_1!#$%&'*-^`{|}~@mail.gmail.com",
                     "<20261128.ü@例え.jp>" })
        {
            var item = await pane.GetJsonAsync("/api/outlook/item?internetMessageId=" + Uri.EscapeDataString(id) + "&conversationId=" +
                                               Uri.EscapeDataString("AAQkADAwATM0MDAAMS1iNTcwLWE0ZjQtMDACLTAwCgAQAKd7PvXeu0tFuW5Ppt3XhWo="));
            Assert.Equal("none", item.GetProperty("kind").GetString());
        }
    }

    [Theory]
    [MemberData(nameof(BadItemQueries))]
    public async Task Item_refuses_bad_queries_with_a_400_problem(string url)
    {
        var user = await app.NewUserAsync();
        var res = await app.AsMicrosoftUser(user.Email).GetAsync(url);
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_sent_item_found_by_our_token_shows_activity_and_records_the_ids_outlook_gave_it()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, pixel) = await SendTrackedAsync(pane, user.Email);
        await app.Anonymous().GetAsync(pixel);

        var sentId = $"<{Guid.NewGuid():N}@EURP123.prod.outlook.com>";
        const string conversation = "AAQkADAwATM0MDAAMS1iNTcwLWE0ZjQtMDACLTAwCgAQAKd7PvXeu0tFuW5Ppt3XhWo=";
        var item = await pane.GetJsonAsync(Item(token, sentId, conversation, from: user.Email));
        Assert.Equal("sent", item.GetProperty("kind").GetString());
        Assert.Equal("token", item.GetProperty("matchedBy").GetString());
        var message = item.GetProperty("message");
        Assert.Equal(id, message.GetProperty("id").GetGuid());
        Assert.Equal("Quarterly numbers", message.GetProperty("subject").GetString());
        Assert.False(message.GetProperty("perRecipient").GetBoolean());
        Assert.Equal(["alan@encom.test", "lora@encom.test"], message.GetProperty("recipients").EnumerateArray().Select(r => r.GetProperty("address").GetString()));
        Assert.Equal(1, message.GetProperty("everyone").GetProperty("opens").GetInt32());
        Assert.False(item.TryGetProperty("answered", out _));

        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Equal(sentId.Trim('<', '>'), copy.SentMessageIdHeader);
        Assert.Equal(conversation, copy.ProviderThreadId);

        // Found again without the header (Outlook on a Mac may drop it), by the Message-ID or the conversation.
        var byId = await pane.GetJsonAsync(Item(internetMessageId: sentId));
        Assert.Equal(("sent", "internetMessageId", id), (byId.GetProperty("kind").GetString(), byId.GetProperty("matchedBy").GetString(), byId.GetProperty("message").GetProperty("id").GetGuid()));
        var byConversation = await pane.GetJsonAsync(Item(conversationId: conversation));
        Assert.Equal("conversationId", byConversation.GetProperty("matchedBy").GetString());

        // What was recorded stays: a later, different id does not replace it.
        await pane.GetJsonAsync(Item(token, "<other@example.test>", "another-conversation", from: user.Email));
        copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Equal(sentId.Trim('<', '>'), copy.SentMessageIdHeader);
        Assert.Equal(conversation, copy.ProviderThreadId);
    }

    [Fact]
    public async Task A_mail_from_someone_else_carrying_the_copys_token_in_our_header_is_shown_but_never_taken_for_the_sent_copy()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, pixel) = await SendTrackedAsync(pane, user.Email);
        MessageCopy Copy() => app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        // Alan read the token from the pixel's address in his copy and wrote it into an x-et-token header of his own mail
        // to the user; the user opens it with the pane before the real Sent copy was recorded. Outlook names Alan as its
        // sender, or nobody the pane can send (an item whose sender it cannot read).
        foreach (var from in new[] { "alan@encom.test", null })
        {
            var forged = await pane.GetJsonAsync(Item(token, $"<{Guid.NewGuid():N}@mail.encom.test>", "AAQkAlansOwnConversation=", from));
            Assert.Equal(("sent", "token", id), (forged.GetProperty("kind").GetString(), forged.GetProperty("matchedBy").GetString(),
                forged.GetProperty("message").GetProperty("id").GetGuid()));
            Assert.Null(Copy().SentMessageIdHeader);
            Assert.Null(Copy().ProviderThreadId);
        }
        // Nor does the user's own look at Alan's mail make an open from the pane's address the sender's.
        using (var reader = app.Anonymous())
        {
            reader.DefaultRequestHeaders.Add("X-Test-Remote-Ip", "203.0.113.9");
            await reader.GetAsync(pixel);
        }
        var alansMail = app.AsMicrosoftUser(user.Email);
        alansMail.DefaultRequestHeaders.Add("X-Test-Remote-Ip", "203.0.113.9");
        await alansMail.GetJsonAsync(Item(token, "<alan-2@mail.encom.test>", from: "alan@encom.test"));
        Assert.Equal([Verdict.Human], app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == id && e.Kind == EventKind.Open).Select(e => e.Verdict).ToList()));

        // The real sent item, from the user's address: its ids are the copy's.
        var sentId = $"<{Guid.NewGuid():N}@EURP123.prod.outlook.com>";
        await pane.GetJsonAsync(Item(token, sentId, "AAQkTheRealConversation=", user.Email.ToUpperInvariant()));
        Assert.Equal(sentId.Trim('<', '>'), Copy().SentMessageIdHeader);
        Assert.Equal("AAQkTheRealConversation=", Copy().ProviderThreadId);
    }

    [Fact]
    public async Task A_pixel_in_the_body_is_the_items_own_only_on_the_users_own_mail_with_the_tracked_subject()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, _) = await SendTrackedAsync(pane, user.Email);
        string Body(string from, string subject, string messageId) =>
            $"/api/outlook/item?bodyToken={token}&from={Uri.EscapeDataString(from)}&subject={Uri.EscapeDataString(subject)}&internetMessageId={Uri.EscapeDataString(messageId)}";
        MessageCopy Copy() => app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));

        // Alan's answer and the user's own forward quote the email, pixel and all; an Exchange sender name is no address.
        foreach (var url in new[] { Body("alan@encom.test", "RE: Quarterly numbers", "<a1@encom.test>"), Body(user.Email, "FW: Quarterly numbers", "<f1@x.test>"),
                     Body("alan@encom.test", "Quarterly numbers", "<a2@encom.test>"), Body("/O=EXCHANGELABS/OU=EXCHANGE/CN=RECIPIENTS/CN=FLYNN", "Quarterly numbers", "<x@x.test>") })
        {
            Assert.Equal("none", (await pane.GetJsonAsync(url)).GetProperty("kind").GetString());
        }
        Assert.Null(Copy().SentMessageIdHeader);

        // The sent email itself: the user's, with the tracked subject.
        var sentId = $"<{Guid.NewGuid():N}@EURP123.prod.outlook.com>";
        var item = await pane.GetJsonAsync(Body(user.Email.ToUpperInvariant(), " Quarterly numbers ", sentId));
        Assert.Equal(("sent", "body", id), (item.GetProperty("kind").GetString(), item.GetProperty("matchedBy").GetString(), item.GetProperty("message").GetProperty("id").GetGuid()));
        Assert.Equal(sentId.Trim('<', '>'), Copy().SentMessageIdHeader);
    }

    [Fact]
    public async Task A_pixel_in_the_body_is_the_items_own_when_outlook_names_the_users_alias_with_its_domain_the_other_way()
    {
        var user = await app.NewUserAsync();
        var name = $"me-{Guid.NewGuid():N}"[..15];
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = name + "@例え.jp" })).IsSuccessStatusCode);
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, _) = await SendTrackedAsync(pane, name + "@例え.jp");
        var sentId = $"<{Guid.NewGuid():N}@EURP123.prod.outlook.com>";
        var item = await pane.GetJsonAsync($"/api/outlook/item?bodyToken={token}&from={Uri.EscapeDataString(name + "@xn--r8jz45g.jp")}" +
                                           $"&subject=Quarterly%20numbers&internetMessageId={Uri.EscapeDataString(sentId)}");
        Assert.Equal(("sent", "body", id), (item.GetProperty("kind").GetString(), item.GetProperty("matchedBy").GetString(), item.GetProperty("message").GetProperty("id").GetGuid()));
    }

    [Fact]
    public async Task A_tracked_answer_is_not_taken_by_its_pixel_since_the_users_later_answers_have_its_subject_and_quote_it()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, _) = await SendTrackedAsync(pane, user.Email, subject: "RE: Quarterly numbers");
        var item = await pane.GetJsonAsync($"/api/outlook/item?bodyToken={token}&from={Uri.EscapeDataString(user.Email)}&subject=RE%3A%20Quarterly%20numbers" +
                                           "&internetMessageId=%3Clater%40x.test%3E");
        Assert.Equal("none", item.GetProperty("kind").GetString());
        Assert.Null(app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id)).SentMessageIdHeader);
    }

    [Fact]
    public async Task Signed_in_by_the_web_apps_cookie_an_item_shows_but_nothing_is_recorded()
    {
        // A recipient knows the pixel's token and could send the sender a link to this GET with ids of their choosing.
        const string password = "Correct-horse-battery-9";
        var user = await app.NewUserAsync(password: password);
        var (id, token, _) = await SendTrackedAsync(app.AsMicrosoftUser(user.Email), user.Email);
        var browser = await EmailTracking.Tests.Graph.WebSession.SignInAsync(app, user.Email, password);
        var item = await browser.GetFromJsonAsync<JsonElement>(Item(token, "<forged@attacker.test>", "AAQkForgedConversation=", from: user.Email));
        Assert.Equal("sent", item.GetProperty("kind").GetString());
        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Null(copy.SentMessageIdHeader);
        Assert.Null(copy.ProviderThreadId);
    }

    [Fact]
    public async Task Per_recipient_activity_counts_pages_read_and_downloads()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, _) = await SendTrackedAsync(pane, user.Email, perRecipient: true, to: ["alan@encom.test", "lora@encom.test"]);
        await app.WithDbAsync(async db =>
        {
            var alan = await db.Recipients.SingleAsync(r => r.TrackedMessageId == id && r.Address == "alan@encom.test");
            void Add(EventKind kind, Verdict verdict, int? page = null) => db.Events.Add(new TrackingEvent
            {
                TeamId = user.TeamId, UserId = user.Id, TrackedMessageId = id, CopyId = alan.CopyId, RecipientId = alan.Id, Kind = kind,
                OccurredAt = DateTimeOffset.UtcNow, Verdict = verdict, Reason = "test", Page = page,
            });
            Add(EventKind.Open, Verdict.Human);
            Add(EventKind.Click, Verdict.Human);
            Add(EventKind.Click, Verdict.Scanner);
            Add(EventKind.Open, Verdict.Self); // the sender's own view: neither a person's nor a machine's
            Add(EventKind.DocumentPage, Verdict.Human, 1);
            Add(EventKind.DocumentPage, Verdict.Human, 2);
            Add(EventKind.Download, Verdict.Human);
            Add(EventKind.Reply, Verdict.Human);
            await db.SaveChangesAsync();
        });

        var message = (await pane.GetJsonAsync(Item(token))).GetProperty("message");
        Assert.True(message.GetProperty("perRecipient").GetBoolean());
        var alan = message.GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == "alan@encom.test");
        Assert.Equal((1, 1, 2, 1, true, 1, 1), (alan.GetProperty("opens").GetInt32(), alan.GetProperty("clicks").GetInt32(), alan.GetProperty("pagesRead").GetInt32(),
            alan.GetProperty("downloads").GetInt32(), alan.GetProperty("replied").GetBoolean(), alan.GetProperty("machineEvents").GetInt32(),
            alan.GetProperty("ownViews").GetInt32()));
        Assert.NotEqual(JsonValueKind.Null, alan.GetProperty("lastOpenAt").ValueKind);
        var lora = message.GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == "lora@encom.test");
        Assert.Equal(0, lora.GetProperty("opens").GetInt32());
        Assert.Equal(2, message.GetProperty("everyone").GetProperty("pagesRead").GetInt32());
    }

    [Fact]
    public async Task On_a_shared_copy_who_replied_is_known_per_person_though_opens_are_not()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, pixel) = await SendTrackedAsync(pane, user.Email);
        await app.Anonymous().GetAsync(pixel);
        await app.WithDbAsync(async db =>
        {
            var copy = await db.Copies.SingleAsync(c => c.TrackedMessageId == id);
            var lora = await db.Recipients.SingleAsync(r => r.TrackedMessageId == id && r.Address == "lora@encom.test");
            db.Events.Add(new TrackingEvent
            {
                TeamId = user.TeamId, UserId = user.Id, TrackedMessageId = id, CopyId = copy.Id, RecipientId = lora.Id, Kind = EventKind.Reply,
                OccurredAt = DateTimeOffset.UtcNow, Verdict = Verdict.Human, Reason = "test", FromAddress = "lora@encom.test",
            });
            await db.SaveChangesAsync();
        });

        var message = (await pane.GetJsonAsync(Item(token))).GetProperty("message");
        Assert.False(message.GetProperty("perRecipient").GetBoolean());
        var rows = message.GetProperty("recipients").EnumerateArray().ToDictionary(r => r.GetProperty("address").GetString()!);
        Assert.True(rows["lora@encom.test"].GetProperty("replied").GetBoolean());
        Assert.False(rows["alan@encom.test"].GetProperty("replied").GetBoolean());
        Assert.Equal(0, rows["lora@encom.test"].GetProperty("opens").GetInt32()); // whose open it was is not known
        Assert.True(message.GetProperty("everyone").GetProperty("replied").GetBoolean());
        Assert.Equal(1, message.GetProperty("everyone").GetProperty("opens").GetInt32());
    }

    [Fact]
    public async Task A_received_reply_names_the_tracked_message_it_answered()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, _, _) = await SendTrackedAsync(pane, user.Email);
        var replyId = $"{Guid.NewGuid():N}@encom.test";
        await app.WithDbAsync(async db =>
        {
            var copy = await db.Copies.SingleAsync(c => c.TrackedMessageId == id);
            db.InboundMessages.Add(new InboundMessage
            {
                TeamId = user.TeamId, UserId = user.Id, ConnectionId = Guid.NewGuid(), ProviderId = "graph-1", InternetMessageId = replyId,
                FromAddress = "alan@encom.test", Subject = "RE: Quarterly numbers", ReceivedAt = DateTimeOffset.UtcNow, Kind = EventKind.AutoReply,
                Reason = "test", TrackedMessageId = id, CopyId = copy.Id, MatchedBy = MatchedBy.InReplyTo, HandledAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });

        var item = await pane.GetJsonAsync(Item(internetMessageId: $"<{replyId}>", conversationId: "some-conversation"));
        Assert.Equal("reply", item.GetProperty("kind").GetString());
        var answered = item.GetProperty("answered");
        Assert.Equal(id, answered.GetProperty("messageId").GetGuid());
        Assert.Equal("Quarterly numbers", answered.GetProperty("subject").GetString());
        Assert.Equal("alan@encom.test", answered.GetProperty("from").GetString());
        Assert.Equal("auto-reply", answered.GetProperty("verdict").GetString());

        // Another team's user learns nothing about it.
        var stranger = await app.NewUserAsync();
        var theirs = await app.AsMicrosoftUser(stranger.Email).GetJsonAsync(Item(internetMessageId: replyId));
        Assert.Equal("none", theirs.GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Other_teams_find_nothing_and_record_nothing_while_a_team_admin_sees_a_members_message()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName);
        var stranger = await app.NewUserAsync();
        var (id, token, _) = await SendTrackedAsync(app.AsMicrosoftUser(member.Email), member.Email);

        var foreign = await app.AsMicrosoftUser(stranger.Email).GetJsonAsync(Item(token, "<stolen@x.test>", "conv-x"));
        Assert.Equal("none", foreign.GetProperty("kind").GetString());
        Assert.False(foreign.TryGetProperty("message", out _));

        var seen = await app.AsMicrosoftUser(admin.Email).GetJsonAsync(Item(token, "<admin-view@x.test>", "conv-admin", from: member.Email));
        Assert.Equal(id, seen.GetProperty("message").GetProperty("id").GetGuid());

        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Null(copy.SentMessageIdHeader);
        Assert.Null(copy.ProviderThreadId);
    }

    /// <summary>
    /// The sender opens their sent mail in Outlook to see its pane: Outlook shows the body, pixel and all, from the
    /// sender's own machine. The open from the address the pane's own request comes from, just before, is the sender's;
    /// a recipient's open from elsewhere stays a person's, and an admin looking at a member's mail changes nothing.
    /// </summary>
    [Fact]
    public async Task The_senders_own_outlook_showing_the_sent_mail_beside_the_pane_is_not_an_open()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var user = await app.NewUserAsync(team: teamName);
        var (id, token, pixel) = await SendTrackedAsync(app.AsMicrosoftUser(user.Email), user.Email);
        const string senderIp = "203.0.113.7", recipientIp = "198.51.100.20";
        async Task OpenFromAsync(string ip)
        {
            using var client = app.Anonymous();
            client.DefaultRequestHeaders.Add("X-Test-Remote-Ip", ip);
            Assert.Equal("image/gif", (await client.GetAsync(pixel)).Content.Headers.ContentType?.MediaType);
        }
        HttpClient PaneFrom(string email, string ip)
        {
            var pane = app.AsMicrosoftUser(email);
            pane.DefaultRequestHeaders.Add("X-Test-Remote-Ip", ip);
            return pane;
        }
        await OpenFromAsync(recipientIp);
        await OpenFromAsync(senderIp);

        // A team admin on the same network looks at the member's mail: not the sender, nothing changes.
        var adminView = await PaneFrom(admin.Email, senderIp).GetJsonAsync(Item(token, from: user.Email));
        Assert.Equal(2, adminView.GetProperty("message").GetProperty("everyone").GetProperty("opens").GetInt32());

        var item = await PaneFrom(user.Email, senderIp).GetJsonAsync(Item(token, $"<{Guid.NewGuid():N}@EURP123.prod.outlook.com>", from: user.Email));
        var everyone = item.GetProperty("message").GetProperty("everyone");
        Assert.Equal(1, everyone.GetProperty("opens").GetInt32());
        Assert.Equal(1, everyone.GetProperty("ownViews").GetInt32());
        var verdicts = app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == id && e.Kind == EventKind.Open).Select(e => new { e.Ip, e.Verdict }).ToList());
        Assert.Contains(verdicts, v => v.Ip == recipientIp && v.Verdict == Verdict.Human);
        Assert.Contains(verdicts, v => v.Ip == senderIp && v.Verdict == Verdict.Self);
    }

    [Fact]
    public async Task A_message_id_longer_than_the_copy_keeps_is_looked_up_but_not_recorded()
    {
        var user = await app.NewUserAsync();
        var pane = app.AsMicrosoftUser(user.Email);
        var (id, token, _) = await SendTrackedAsync(pane, user.Email);
        var item = await pane.GetJsonAsync(Item(token, "<" + new string('m', 300) + "@x.test>", new string('c', 200), from: user.Email));
        Assert.Equal("sent", item.GetProperty("kind").GetString());
        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == id));
        Assert.Null(copy.SentMessageIdHeader);
        Assert.Equal(new string('c', 200), copy.ProviderThreadId);
    }

    [Fact]
    public async Task An_item_we_know_nothing_about_is_none()
    {
        var user = await app.NewUserAsync();
        var item = await app.AsMicrosoftUser(user.Email).GetJsonAsync(Item(new string('A', 24), "<unknown@x.test>", "unknown-conversation"));
        Assert.Equal("none", item.GetProperty("kind").GetString());
    }
}

public sealed class OutlookApiOnSqlite(OutlookSqliteApp app) : OutlookApiTests(app), IClassFixture<OutlookSqliteApp>;

public sealed class OutlookApiOnPostgres(OutlookPostgresApp app) : OutlookApiTests(app), IClassFixture<OutlookPostgresApp>;

public sealed class OutlookTokenHeaderTests
{
    [Fact]
    public void The_sent_folder_scanner_reads_the_outlook_add_ins_header()
    {
        var token = "Ab3dEf6hIj9kLm2nOp5qRs8t";
        Assert.True(EmailTracking.Server.Accounts.Tokens.LooksLikeTrackingToken(token), "the sample must look like one of our tokens");
        var mail = new MimeMessage();
        mail.Headers.Add(OutlookApi.TokenHeader, token);
        mail.Body = new TextPart("plain") { Text = "Hello" };
        Assert.Equal([token], SentMailScanner.FindTokens(mail).Pixels);
        Assert.Equal("x-et-token", OutlookApi.TokenHeader);
    }
}
