using System.Net.Http.Json;
using EmailTracking.Data;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Replies;
using EmailTracking.Server.Replies.Classification;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EmailTracking.Tests.Replies;

/// <summary>Matching and recording of messages that arrive in a connected mailbox, without a mail server.</summary>
public abstract class InboundPipelineTests(AppFactory app)
{
    sealed record Sent(TestUser User, MailboxConnection Mailbox, Guid MessageId, List<(string MessageId, string[] Recipients, string Html)> Copies);

    async Task<Sent> SendAsync(bool perRecipient = true, string[]? to = null, string[]? cc = null)
    {
        var user = await app.NewUserAsync();
        var body = await user.RegisterAsync(new
        {
            from = user.Email, subject = "Proposal for Flynn's", to = to ?? ["Flynn <flynn@flynnsarcade.test>"], cc = cc ?? ["alan@encom.test"],
            html = "<p>Hi, <a href=\"https://encom.test/deck\">the deck</a></p>", perRecipient, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
        });
        var copies = body.GetProperty("copies").EnumerateArray()
            .Select(c => (c.GetProperty("messageId").GetString()!.Trim('<', '>'), c.GetProperty("recipients").EnumerateArray().Select(r => r.GetString()!).ToArray(),
                c.GetProperty("html").GetString()!))
            .ToList();
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, ProtectedSecret = "unused",
            // Disabled: the watcher leaves it alone; the pipeline does not care.
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });
        return new Sent(user, mailbox, body.GetProperty("id").GetGuid(), copies);
    }

    static MimeMessage Reply(string from, string? inReplyTo, IEnumerable<string>? references = null, string text = "Sounds good, let's talk Tuesday.", string? id = null)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse(from));
        m.To.Add(MailboxAddress.Parse("sender@sender.test"));
        m.Subject = "Re: Proposal for Flynn's";
        m.MessageId = id ?? $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
        m.Date = DateTimeOffset.UtcNow;
        if (inReplyTo is not null) m.InReplyTo = inReplyTo;
        foreach (var r in references ?? []) m.References.Add(r);
        m.Body = new TextPart("plain") { Text = text + "\n\nOn Mon, someone wrote:\n> Hi, the deck\n" };
        return m;
    }

    /// <summary>An Exchange out-of-office notice (Auto-Submitted) answering <paramref name="inReplyTo"/>.</summary>
    static MimeMessage AutoReply(string from, string inReplyTo, string text)
    {
        var m = Reply(from, inReplyTo, text: text);
        m.Subject = "Automatic reply: Proposal for Flynn's";
        m.Headers.Add("Auto-Submitted", "auto-replied");
        return m;
    }

    async Task<InboundResult> HandleAsync(Sent sent, MimeMessage message, string? providerId = null, string? threadId = null)
    {
        using var scope = app.Services.CreateScope();
        var pipeline = scope.ServiceProvider.GetRequiredService<InboundPipeline>();
        return await pipeline.HandleAsync(sent.Mailbox, providerId ?? $"test:{Guid.NewGuid():N}", message, threadId, null, CancellationToken.None);
    }

    /// <summary>Mail the user sent from their own client, as found in their Sent folder.</summary>
    static MimeMessage OutgoingMail(Sent sent, string id, string body, string? inReplyTo, IEnumerable<string> references)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse(sent.User.Email));
        m.To.Add(MailboxAddress.Parse("flynn@flynnsarcade.test"));
        m.Subject = "Proposal for Flynn's";
        m.MessageId = id;
        if (inReplyTo is not null) m.InReplyTo = inReplyTo;
        foreach (var r in references) m.References.Add(r);
        m.Body = new TextPart("html") { Text = body };
        return m;
    }

    List<InboundMessage> Inbound(Sent sent) => app.WithDb(db => db.InboundMessages.Where(i => i.TrackedMessageId == sent.MessageId).AsNoTracking().ToList());

    [Fact]
    public async Task A_recipient_answering_by_in_reply_to_is_a_human_reply_on_their_row_and_in_the_timeline()
    {
        var sent = await SendAsync();
        var result = await HandleAsync(sent, Reply("Flynn <Flynn@FlynnsArcade.test>", sent.Copies[0].MessageId));

        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        Assert.Equal(EventKind.Reply, result.Kind);
        var inbound = Assert.Single(Inbound(sent));
        Assert.Equal(MatchedBy.InReplyTo, inbound.MatchedBy);
        Assert.Equal(ReplierRole.To, inbound.ReplierRole);
        Assert.Equal("flynn@flynnsarcade.test", inbound.FromAddress);
        Assert.StartsWith("Sounds good", inbound.Excerpt);

        var detail = await sent.User.Client.GetJsonAsync($"/api/messages/{sent.MessageId}");
        var flynn = detail.GetProperty("message").GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == "flynn@flynnsarcade.test");
        Assert.True(flynn.GetProperty("counts").GetProperty("replied").GetBoolean());
        Assert.True(flynn.GetProperty("counts").GetProperty("repliedNeverOpened").GetBoolean());
        var ev = Assert.Single(detail.GetProperty("events").EnumerateArray());
        Assert.Equal("reply", ev.GetProperty("kind").GetString());
        Assert.Equal("human", ev.GetProperty("verdict").GetString());
    }

    [Fact]
    public async Task A_reply_with_control_characters_in_its_subject_and_body_is_recorded_with_them_taken_out()
    {
        // Anyone can write a NUL in a subject (=?utf-8?b?AA==?=) or a body: PostgreSQL text cannot hold it, and the
        // reply failed to be recorded on every round. A tab, BEL or ESC in what is listed as one line goes too.
        var sent = await SendAsync();
        var reply = Reply("flynn@flynnsarcade.test", sent.Copies[0].MessageId, text: "Sounds\u0000 good,\u001b[2J let's talk.");
        reply.Subject = "Re: Proposal\u0000 for\tFlynn's\u0007";
        var result = await HandleAsync(sent, reply);

        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        var inbound = Assert.Single(Inbound(sent));
        Assert.Equal("Re: Proposal for Flynn's", inbound.Subject);
        Assert.StartsWith("Sounds good,[2J let's talk.", inbound.Excerpt);
    }

    [Fact]
    public async Task A_forwarded_colleague_answering_through_references_counts_as_someone_new_on_that_copy()
    {
        var sent = await SendAsync();
        // Flynn forwarded to Kevin; Kevin answers the forward: In-Reply-To names the forward, References the original.
        var forward = $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
        var result = await HandleAsync(sent, Reply("kevinf@flynnsarcade.test", forward, [sent.Copies[0].MessageId, forward]));

        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        var inbound = Assert.Single(Inbound(sent));
        Assert.Equal(MatchedBy.References, inbound.MatchedBy);
        Assert.Equal(ReplierRole.New, inbound.ReplierRole);
        Assert.Contains("not a recipient", result.Detail);
        // The event sits on the copy's recipient (Flynn's row), with Kevin as its author.
        var flynnId = app.WithDb(db => db.Recipients.Single(r => r.TrackedMessageId == sent.MessageId && r.Address == "flynn@flynnsarcade.test").Id);
        Assert.Equal(flynnId, inbound.RecipientId);
        var ev = app.WithDb(db => db.Events.Single(e => e.TrackedMessageId == sent.MessageId));
        Assert.Equal("kevinf@flynnsarcade.test", ev.FromAddress);
    }

    [Fact]
    public async Task A_cc_answering_a_shared_copy_is_recorded_as_the_cc()
    {
        var sent = await SendAsync(perRecipient: false);
        var result = await HandleAsync(sent, Reply("alan@encom.test", sent.Copies[0].MessageId));
        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        var inbound = Assert.Single(Inbound(sent));
        Assert.Equal(ReplierRole.Cc, inbound.ReplierRole);
        var alanId = app.WithDb(db => db.Recipients.Single(r => r.TrackedMessageId == sent.MessageId && r.Address == "alan@encom.test").Id);
        Assert.Equal(alanId, inbound.RecipientId);
    }

    [Fact]
    public async Task The_senders_own_mail_and_aliases_never_count()
    {
        var sent = await SendAsync();
        var alias = $"alias-{Guid.NewGuid():N}"[..14] + "@sender.test";
        var res = await sent.User.Client.PostAsJsonAsync("/api/me/addresses", new { address = alias });
        Assert.True(res.IsSuccessStatusCode);

        Assert.Equal(InboundOutcome.OwnMail, (await HandleAsync(sent, Reply(sent.User.Email, sent.Copies[0].MessageId))).Outcome);
        Assert.Equal(InboundOutcome.OwnMail, (await HandleAsync(sent, Reply(alias.ToUpperInvariant(), sent.Copies[0].MessageId))).Outcome);
        Assert.Empty(Inbound(sent));
    }

    /// <summary>A reply as it arrives: read by MimeKit's parser, which gives a lower-case punycode domain in Unicode.</summary>
    static MimeMessage Arrived(string from, string inReplyTo) => MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(
        $"From: {from}\r\nTo: sender@sender.test\r\nSubject: Re: Proposal\r\nMessage-ID: <{Guid.NewGuid():N}@mx.test>\r\n" +
        $"In-Reply-To: <{inReplyTo}>\r\n\r\nYes.\r\n")));

    [Fact]
    public async Task A_recipient_is_known_whether_their_domain_is_written_in_punycode_or_in_unicode()
    {
        var sent = await SendAsync(perRecipient: false, to: ["Zoe <zoe@xn--r8jz45g.jp>"], cc: ["kai@例え.jp"]);
        // Registered in punycode, read in Unicode.
        var fromZoe = Arrived("Zoe <zoe@xn--r8jz45g.jp>", sent.Copies[0].MessageId);
        Assert.Equal("zoe@例え.jp", fromZoe.From.Mailboxes.Single().Address);
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, fromZoe)).Outcome);
        // Registered in Unicode; a capital XN-- is left in punycode.
        var fromKai = Arrived("Kai <kai@XN--R8JZ45G.JP>", sent.Copies[0].MessageId);
        Assert.Equal("kai@XN--R8JZ45G.JP", fromKai.From.Mailboxes.Single().Address);
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, fromKai)).Outcome);

        var ids = app.WithDb(db => db.Recipients.Where(r => r.TrackedMessageId == sent.MessageId).ToDictionary(r => r.Address, r => r.Id));
        var inbound = Inbound(sent).OrderBy(i => i.Id).ToList();
        Assert.Equal([ReplierRole.To, ReplierRole.Cc], inbound.Select(i => i.ReplierRole));
        Assert.Equal([ids["zoe@xn--r8jz45g.jp"], ids["kai@例え.jp"]], inbound.Select(i => i.RecipientId));
    }

    [Fact]
    public async Task The_senders_aliases_with_a_domain_written_the_other_way_still_never_count()
    {
        var sent = await SendAsync();
        var name = $"alias-{Guid.NewGuid():N}"[..14];
        Assert.True((await sent.User.Client.PostAsJsonAsync("/api/me/addresses", new { address = name + "@xn--r8jz45g.jp" })).IsSuccessStatusCode);
        Assert.True((await sent.User.Client.PostAsJsonAsync("/api/me/addresses", new { address = name + "@例え.test" })).IsSuccessStatusCode);
        // The mailbox connected under its Unicode name, the mail from its punycode one.
        sent.Mailbox.Address = name + "@例え.org";

        Assert.Equal(InboundOutcome.OwnMail, (await HandleAsync(sent, Arrived(name + "@xn--r8jz45g.jp", sent.Copies[0].MessageId))).Outcome);
        Assert.Equal(InboundOutcome.OwnMail, (await HandleAsync(sent, Arrived(name + "@XN--R8JZ45G.test", sent.Copies[0].MessageId))).Outcome);
        Assert.Equal(InboundOutcome.OwnMail, (await HandleAsync(sent, Arrived(name + "@XN--R8JZ45G.org", sent.Copies[0].MessageId))).Outcome);
        Assert.Empty(Inbound(sent));
    }

    [Fact]
    public async Task A_bounce_naming_the_punycode_form_of_a_recipient_written_in_unicode_is_that_recipients()
    {
        var sent = await SendAsync(perRecipient: false, to: ["zoe@例え.jp"], cc: ["alan@encom.test"]);
        var result = await HandleAsync(sent, Bounce(sent.Copies[0].MessageId, "zoe@xn--r8jz45g.jp"));
        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        var zoe = app.WithDb(db => db.Recipients.Single(r => r.TrackedMessageId == sent.MessageId && r.Address == "zoe@例え.jp").Id);
        Assert.Equal(zoe, Inbound(sent).Single().RecipientId);
    }

    [Fact]
    public async Task A_bounce_naming_a_recipient_stored_in_punycode_by_its_unicode_address_is_that_recipients()
    {
        // An SMTPUTF8 server reports the address as its user knows it, in Unicode; the message went to two people, so the
        // original's addressees do not tell which one failed.
        var sent = await SendAsync(perRecipient: false, to: ["zoe@xn--r8jz45g.jp"], cc: ["alan@encom.test"]);
        var bounce = Bounce(sent.Copies[0].MessageId, "zoe@例え.jp");
        ((MessagePart)((MultipartReport)bounce.Body!)[2]).Message!.Cc.Add(MailboxAddress.Parse("alan@encom.test"));
        var result = await HandleAsync(sent, bounce);
        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        var zoe = app.WithDb(db => db.Recipients.Single(r => r.TrackedMessageId == sent.MessageId && r.Address == "zoe@xn--r8jz45g.jp").Id);
        Assert.Equal(zoe, Inbound(sent).Single().RecipientId);
    }

    [Fact]
    public async Task Handling_the_same_message_twice_records_it_once()
    {
        var sent = await SendAsync();
        var reply = Reply("flynn@flynnsarcade.test", sent.Copies[0].MessageId);
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, reply, "imap:INBOX:1:7")).Outcome);
        // Seen again under the same provider id (a restart before the checkpoint moved) and under another one.
        Assert.Equal(InboundOutcome.Duplicate, (await HandleAsync(sent, reply, "imap:INBOX:1:7")).Outcome);
        Assert.Equal(InboundOutcome.Duplicate, (await HandleAsync(sent, reply, "imap:INBOX:2:1")).Outcome);
        Assert.Single(Inbound(sent));
        Assert.Equal(1, app.WithDb(db => db.Events.Count(e => e.TrackedMessageId == sent.MessageId)));
    }

    [Fact]
    public async Task Unrelated_mail_and_another_users_message_ids_do_not_match()
    {
        var sent = await SendAsync();
        var other = await SendAsync();
        Assert.Equal(InboundOutcome.NotMatched, (await HandleAsync(sent, Reply("flynn@flynnsarcade.test", null))).Outcome);
        Assert.Equal(InboundOutcome.NotMatched, (await HandleAsync(sent, Reply("flynn@flynnsarcade.test", "nothing@nowhere.test"))).Outcome);
        // Another user's Message-ID, arriving in this user's mailbox, is not this user's reply.
        Assert.Equal(InboundOutcome.NotMatched, (await HandleAsync(sent, Reply("flynn@flynnsarcade.test", other.Copies[0].MessageId))).Outcome);
        Assert.Empty(Inbound(sent));
        Assert.Empty(Inbound(other));
    }

    [Fact]
    public async Task Our_ids_have_our_shape_and_an_id_a_server_kept_instead_matches_whatever_its_shape()
    {
        var sent = await SendAsync();
        Assert.All(sent.Copies, c => Assert.True(OurMessageIds.MayBeOurs(c.MessageId), c.MessageId));
        // Only ids shaped like ours are looked for among ours; the ids servers kept instead are looked for whatever their
        // shape, even one that looks like ours (some servers make 32 hexadecimal digits too).
        var lookalike = $"{Guid.NewGuid():N}@mx.sender.test";
        app.WithDb(db =>
        {
            db.Copies.Single(c => c.MessageIdHeader == sent.Copies[0].MessageId).SentMessageIdHeader = lookalike;
            db.Copies.Single(c => c.MessageIdHeader == sent.Copies[1].MessageId).SentMessageIdHeader = "CAOd=kx7Q9+Yb3@mail.gmail.com";
            return db.SaveChanges();
        });
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, Reply("flynn@flynnsarcade.test", lookalike))).Outcome);
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, Reply("alan@encom.test", "x@elsewhere.test",
            ["CAOd=kx7Q9+Yb3@mail.gmail.com", "y@elsewhere.test"]))).Outcome);
        var copyIds = app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == sent.MessageId).ToDictionary(c => c.Id, c => c.MessageIdHeader));
        Assert.Equal([sent.Copies[0].MessageId, sent.Copies[1].MessageId], Inbound(sent).OrderBy(i => i.Id).Select(i => copyIds[i.CopyId]));
    }

    /// <summary>A delivery-status report for a copy, quoting the original's headers, with a References header or none.</summary>
    static MimeMessage Bounce(string originalId, string failed, IEnumerable<string>? references = null, string? sentTo = null)
    {
        var status = new MessageDeliveryStatus();
        status.StatusGroups.Add(new HeaderList { { "Reporting-MTA", "dns; mx.flynnsarcade.test" } });
        var fields = new HeaderList { { "Final-Recipient", "rfc822; " + failed }, { "Action", "failed" }, { "Status", "5.1.1" } };
        if (sentTo is not null) fields.Insert(0, new Header("Original-Recipient", "rfc822;" + sentTo));
        status.StatusGroups.Add(fields);
        var original = new MimeMessage { MessageId = originalId, Subject = "Proposal for Flynn's" };
        original.From.Add(MailboxAddress.Parse("sender@sender.test"));
        original.To.Add(MailboxAddress.Parse(failed));
        var report = new MultipartReport("delivery-status")
        {
            new TextPart("plain") { Text = $"This is the mail system at host mx.flynnsarcade.test.\n\n<{failed}>: host said: 550 5.1.1 User unknown\n" },
            status,
            new MessagePart("rfc822-headers") { Message = original },
        };
        var m = new MimeMessage { Subject = "Undelivered Mail Returned to Sender", Body = report, MessageId = $"{Guid.NewGuid():N}@mx.flynnsarcade.test" };
        m.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@mx.flynnsarcade.test"));
        m.To.Add(MailboxAddress.Parse("sender@sender.test"));
        foreach (var r in references ?? []) m.References.Add(r);
        return m;
    }

    [Fact]
    public async Task A_bounce_of_an_address_an_alias_expanded_is_the_bounce_of_the_recipient_it_was_sent_to()
    {
        // One body for both: which recipient failed comes only from the report. sales@ was expanded to bob@, whose
        // mailbox is gone; the report names bob@ as the failed address and sales@ as the one the mail was sent to.
        var sent = await SendAsync(perRecipient: false, to: ["sales@flynnsarcade.test"], cc: ["alan@encom.test"]);
        var report = Bounce(sent.Copies[0].MessageId, "bob@flynnsarcade.test", sentTo: "sales@flynnsarcade.test");
        var failed = Assert.Single(new InboundClassifier().Classify(report).Recipients);
        Assert.Equal(("bob@flynnsarcade.test", "sales@flynnsarcade.test"), (failed.Address, failed.SentTo));
        // A report whose two fields name the same address says nothing more.
        Assert.Null(Assert.Single(new InboundClassifier().Classify(Bounce("x@y.test", "bob@flynnsarcade.test", sentTo: "BOB@flynnsarcade.test")).Recipients).SentTo);
        var result = await HandleAsync(sent, report);
        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        var (events, sales) = app.WithDb(db => (db.Events.Where(e => e.TrackedMessageId == sent.MessageId && e.Kind == EventKind.Bounce).ToList(),
            db.Recipients.Single(r => r.TrackedMessageId == sent.MessageId && r.Address == "sales@flynnsarcade.test").Id));
        Assert.Equal(sales, Assert.Single(events).RecipientId);
        Assert.Equal(sales, Inbound(sent).Single().RecipientId);
    }

    [Fact]
    public async Task A_batch_matches_each_message_as_it_would_be_matched_alone_most_trusted_id_first()
    {
        var sent = await SendAsync(to: ["flynn@flynnsarcade.test", "kevinf@flynnsarcade.test", "lora@encom.test"]);
        var other = await SendAsync();
        var (a, b, c) = (sent.Copies[0].MessageId, sent.Copies[1].MessageId, sent.Copies[2].MessageId);
        var kept = "CAOd=kx7Q9+Yb3kept@mail.gmail.com";
        app.WithDb(db => { db.Copies.Single(x => x.MessageIdHeader == c).SentMessageIdHeader = kept; return db.SaveChanges(); });
        var foreign = $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
        MimeMessage[] batch =
        [
            // In-Reply-To wins over an older reference to another copy.
            Reply("flynn@flynnsarcade.test", a, [b, a]),
            // In-Reply-To is not ours: the newest reference that is decides, whatever older ones say.
            Reply("kevinf@flynnsarcade.test", foreign, [a, b, foreign]),
            // Only a kept id, deep in References.
            Reply("lora@encom.test", foreign, [kept, foreign]),
            // Nothing of this user's: another user's copy, and mail that is not ours.
            Reply("flynn@flynnsarcade.test", other.Copies[0].MessageId, [other.Copies[0].MessageId]),
            Reply("flynn@flynnsarcade.test", foreign),
            // Reports: the original they quote, with and without References; a References id of ours outranks it.
            Bounce(b, "kevinf@flynnsarcade.test"),
            Bounce(c, "lora@encom.test", [foreign]),
            Bounce(c, "lora@encom.test", [a]),
            // The same id asked for twice in one batch.
            Reply("flynn@flynnsarcade.test", a),
        ];
        var copyIds = app.WithDb(db => db.Copies.Where(x => x.TrackedMessageId == sent.MessageId).ToDictionary(x => x.MessageIdHeader, x => x.Id));
        (Guid? Copy, MatchedBy? By)[] expected =
        [
            (copyIds[a], MatchedBy.InReplyTo), (copyIds[b], MatchedBy.References), (copyIds[c], MatchedBy.References), (null, null), (null, null),
            (copyIds[b], MatchedBy.OriginalMessageId), (copyIds[c], MatchedBy.OriginalMessageId), (copyIds[a], MatchedBy.References),
            (copyIds[a], MatchedBy.InReplyTo),
        ];

        using var scope = app.Services.CreateScope();
        var pipeline = scope.ServiceProvider.GetRequiredService<InboundPipeline>();
        var together = await pipeline.AnalyzeManyAsync(sent.User.Id, [.. batch.Select(m => (m, (string?)null))], CancellationToken.None);
        var alone = new List<InboundPipeline.Analysis>();
        foreach (var m in batch) alone.Add(await pipeline.AnalyzeAsync(sent.User.Id, m, null, CancellationToken.None));

        Assert.Equal(expected, together.Select(x => (x.Match?.CopyId, x.Match?.By)));
        Assert.Equal(expected, alone.Select(x => (x.Match?.CopyId, x.Match?.By)));
        Assert.All(together.Where(x => x.Match is not null), x => Assert.Equal(sent.MessageId, x.Match!.MessageId));
        Assert.Equal(InboundKind.Bounce, together[5].Classification.Kind);
    }

    /// <summary>A Guid whose bytes are mostly zero, with a random middle so that runs never collide.</summary>
    static Guid MostlyZero()
    {
        var bytes = new byte[16];
        System.Security.Cryptography.RandomNumberGenerator.Fill(bytes.AsSpan(4, 6));
        return new Guid(bytes);
    }

    [Fact]
    public async Task A_match_names_the_copy_its_message_its_team_and_its_recipient_exactly()
    {
        // The lookup reads a copy's ids back from the database in one piece (on SQLite, one blob of 16-byte values):
        // ids full of zero bytes, a copy with a recipient and one without, found by our id and by a kept one.
        var user = await app.NewUserAsync();
        var message = new TrackedMessage
        {
            Id = MostlyZero(), TeamId = user.TeamId, UserId = user.Id, FromAddress = user.Email, Subject = "Zeros",
            PerRecipient = true, CreatedAt = DateTimeOffset.UtcNow, SentAt = DateTimeOffset.UtcNow,
        };
        var flynn = new Recipient { Id = MostlyZero(), TrackedMessageId = message.Id, Address = "flynn@flynnsarcade.test", Role = RecipientRole.To };
        var withRecipient = new MessageCopy
        {
            Id = MostlyZero(), TrackedMessageId = message.Id, UserId = user.Id, TeamId = user.TeamId, RecipientId = flynn.Id,
            MessageIdHeader = OurMessageIds.New("t.sender.test"), PixelToken = Guid.NewGuid().ToString("N"),
        };
        flynn.CopyId = withRecipient.Id;
        var kept = $"{Guid.NewGuid():N}@mail.gmail.com";
        var shared = new MessageCopy
        {
            Id = MostlyZero(), TrackedMessageId = message.Id, UserId = user.Id, TeamId = user.TeamId,
            MessageIdHeader = OurMessageIds.New("t.sender.test"), SentMessageIdHeader = kept, PixelToken = Guid.NewGuid().ToString("N"),
        };
        app.WithDb(db =>
        {
            db.Messages.Add(message);
            db.Recipients.Add(flynn);
            db.Copies.AddRange(withRecipient, shared);
            return db.SaveChanges();
        });

        using var scope = app.Services.CreateScope();
        var pipeline = scope.ServiceProvider.GetRequiredService<InboundPipeline>();
        var found = await pipeline.AnalyzeManyAsync(user.Id,
            [(Reply("flynn@flynnsarcade.test", withRecipient.MessageIdHeader), null), (Reply("lora@encom.test", kept), null)], CancellationToken.None);

        Assert.Equal(new InboundPipeline.Match(message.Id, user.TeamId, withRecipient.Id, flynn.Id, MatchedBy.InReplyTo), found[0].Match);
        Assert.Equal(new InboundPipeline.Match(message.Id, user.TeamId, shared.Id, null, MatchedBy.InReplyTo), found[1].Match);
    }

    [Fact]
    public async Task A_reference_bomb_is_cut_short_and_the_newest_references_still_match()
    {
        var sent = await SendAsync();
        var junk = Enumerable.Range(0, 3_000).Select(i => $"loop{i}@x.test").ToList();
        var bomb = Reply("flynn@flynnsarcade.test", "loop1@x.test", junk);
        Assert.Equal(InboundOutcome.NotMatched, (await HandleAsync(sent, bomb)).Outcome);

        var newestLast = Reply("flynn@flynnsarcade.test", "loop1@x.test", junk.Append(sent.Copies[0].MessageId));
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, newestLast)).Outcome);
    }

    [Fact]
    public async Task Mail_sent_from_outlook_is_found_by_token_and_answers_to_its_real_message_id_or_thread_index_match()
    {
        var sent = await SendAsync();
        var (ourId, _, html) = sent.Copies[0];
        // Outlook replaced our Message-ID at send and added its conversation index.
        var conversation = Convert.ToBase64String(Enumerable.Range(1, 22).Select(i => (byte)i).ToArray());
        var outgoing = new MimeMessage();
        outgoing.From.Add(MailboxAddress.Parse(sent.User.Email));
        outgoing.To.Add(MailboxAddress.Parse("flynn@flynnsarcade.test"));
        outgoing.Subject = "Proposal for Flynn's";
        outgoing.MessageId = "AM0PR01MB1234.outlook.test";
        outgoing.Headers.Add("Thread-Index", conversation);
        outgoing.Body = new TextPart("html") { Text = html };

        using (var scope = app.Services.CreateScope())
        {
            var scanner = scope.ServiceProvider.GetRequiredService<SentMailScanner>();
            var found = await scanner.HandleAsync(sent.Mailbox, outgoing, "AAQkAGI2conversation", CancellationToken.None);
            Assert.Equal(InboundOutcome.Recorded, found.Outcome);
            // Seen again: nothing new.
            Assert.Equal(InboundOutcome.Duplicate, (await scanner.HandleAsync(sent.Mailbox, outgoing, "AAQkAGI2conversation", CancellationToken.None)).Outcome);
        }
        var copy = app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId));
        Assert.Equal("AM0PR01MB1234.outlook.test", copy.SentMessageIdHeader);
        Assert.Equal(conversation, copy.ThreadIndex);

        var byRealId = await HandleAsync(sent, Reply("flynn@flynnsarcade.test", "AM0PR01MB1234.outlook.test"));
        Assert.Equal(InboundOutcome.Recorded, byRealId.Outcome);

        // A client that keeps no In-Reply-To or References but Outlook's Thread-Index (the conversation plus 5 bytes).
        var reply = Reply("alan@encom.test", null);
        reply.Headers.Add("Thread-Index", Convert.ToBase64String([.. Enumerable.Range(1, 22).Select(i => (byte)i), 1, 2, 3, 4, 5]));
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, reply)).Outcome);

        var byThread = Reply("lora@encom.test", null);
        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, byThread, threadId: "AAQkAGI2conversation")).Outcome);
        Assert.Equal([MatchedBy.InReplyTo, MatchedBy.ThreadIndex, MatchedBy.ThreadId], Inbound(sent).OrderBy(i => i.Id).Select(i => i.MatchedBy));
    }

    [Fact]
    public async Task A_long_reply_with_an_emoji_where_its_excerpt_is_cut_is_recorded_with_whole_characters()
    {
        var sent = await SendAsync();
        // The excerpt keeps 499 UTF-16 units and an ellipsis: the thumbs-up (two units) straddles the cut. Half of it
        // is not text PostgreSQL takes, and the watch would try the message again and again.
        var text = new string('a', 498) + "\U0001F44D see you Tuesday";
        var reply = Reply("flynn@flynnsarcade.test", sent.Copies[0].MessageId, text: text);
        reply.Subject = "Re: " + new string('b', 994) + "\U0001F44D!";

        Assert.Equal(InboundOutcome.Recorded, (await HandleAsync(sent, reply)).Outcome);
        var inbound = Assert.Single(Inbound(sent));
        Assert.Equal(new string('a', 498) + "…", inbound.Excerpt);
        Assert.Equal("Re: " + new string('b', 994) + "…", inbound.Subject);
    }

    [Fact]
    public async Task The_users_later_mail_quoting_a_tracked_copy_leaves_the_Message_ID_the_copy_left_with()
    {
        var sent = await SendAsync();
        var (ourId, _, html) = sent.Copies[0];
        MimeMessage Outgoing(string id, string body, string? inReplyTo, IEnumerable<string> references) =>
            OutgoingMail(sent, id, body, inReplyTo, references);
        // The copy in Sent, with the Message-ID Outlook gave it at send; then Flynn answered it (quoting it, links
        // and all), and the user's own follow-up to that answer quotes the whole thread: it carries the copy's tokens.
        var flynnsAnswer = $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
        var original = Outgoing("AM0PR01MB1111.outlook.test", html, null, []);
        var followUp = Outgoing("AM0PR01MB2222.outlook.test", "<p>Any news?</p><blockquote>" + html + "</blockquote>", flynnsAnswer,
            ["AM0PR01MB1111.outlook.test", flynnsAnswer]);
        using (var scope = app.Services.CreateScope())
        {
            var scanner = scope.ServiceProvider.GetRequiredService<SentMailScanner>();
            Assert.Equal(InboundOutcome.Recorded, (await scanner.HandleAsync(sent.Mailbox, original, null, CancellationToken.None)).Outcome);
            await scanner.HandleAsync(sent.Mailbox, followUp, null, CancellationToken.None);
        }
        Assert.Equal("AM0PR01MB1111.outlook.test", app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId).SentMessageIdHeader));

        // Alan, cc'd, answers the copy itself later on: still matched by the Message-ID it left with.
        var late = await HandleAsync(sent, Reply("alan@encom.test", "AM0PR01MB1111.outlook.test", ["AM0PR01MB1111.outlook.test"]));
        Assert.Equal(InboundOutcome.Recorded, late.Outcome);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_tracked_follow_up_quoting_an_earlier_tracked_copy_records_its_own_Message_ID(bool withTokenHeader)
    {
        var sent = await SendAsync();
        var (ourId, _, html) = sent.Copies[0];
        // A second tracked mail, a follow-up to Flynn's answer: its pixel above the new text, then the quoted thread
        // with the first copy's pixel and links; it answers the first copy (References) but is not it.
        var second = (await sent.User.RegisterSimpleAsync(to: ["flynn@flynnsarcade.test"])).GetProperty("copies")[0];
        var secondToken = second.GetProperty("token").GetString()!;
        var flynnsAnswer = $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
        var original = OutgoingMail(sent, "AM0PR01MB1111.outlook.test", html, null, []);
        var followUp = OutgoingMail(sent, "AM0PR01MB3333.outlook.test",
            $"<img src=\"{second.GetProperty("pixelUrl").GetString()}\" width=\"1\" height=\"1\"><p>Any news?</p><blockquote>{html}</blockquote>",
            flynnsAnswer, ["AM0PR01MB1111.outlook.test", flynnsAnswer]);
        if (withTokenHeader) followUp.Headers.Add(SentMailScanner.TokenHeader, secondToken);

        using (var scope = app.Services.CreateScope())
        {
            var scanner = scope.ServiceProvider.GetRequiredService<SentMailScanner>();
            Assert.Equal(InboundOutcome.Recorded, (await scanner.HandleAsync(sent.Mailbox, original, null, CancellationToken.None)).Outcome);
            Assert.Equal(InboundOutcome.Recorded, (await scanner.HandleAsync(sent.Mailbox, followUp, null, CancellationToken.None)).Outcome);
        }
        Assert.Equal("AM0PR01MB1111.outlook.test", app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId).SentMessageIdHeader));
        Assert.Equal("AM0PR01MB3333.outlook.test", app.WithDb(db => db.Copies.Single(c => c.PixelToken == secondToken).SentMessageIdHeader));
    }

    /// <summary>
    /// The user's forward of their own tracked mail, as Outlook writes it: no In-Reply-To, no References, its own text
    /// above a forwarded block that quotes the tracked body, pixel and links and all, to someone else.
    /// </summary>
    static MimeMessage OutlookForward(Sent sent, string id, string subject, string html)
    {
        var m = OutgoingMail(sent, id, "<p>Lora, FYI.</p><div id=\"divRplyFwdMsg\"><b>From:</b> Kevin<br><b>Subject:</b> Proposal for Flynn's</div>" + html, null, []);
        m.Subject = subject;
        m.To.Clear();
        m.To.Add(MailboxAddress.Parse("lora@encom.test"));
        m.Date = DateTimeOffset.UtcNow;
        return m;
    }

    async Task<InboundResult> ScanSentAsync(Sent sent, MimeMessage message)
    {
        using var scope = app.Services.CreateScope();
        return await scope.ServiceProvider.GetRequiredService<SentMailScanner>().HandleAsync(sent.Mailbox, message, null, CancellationToken.None);
    }

    [Theory]
    [InlineData("FW: Proposal for Flynn's")]
    [InlineData("WG: Proposal for Flynn's")]
    [InlineData("TR : Proposal for Flynn's")]
    [InlineData("Fwd: RE: Proposal  for Flynn's")]
    public async Task A_forward_of_a_tracked_copy_the_Sent_folder_never_showed_is_not_taken_for_it_and_the_copy_still_is(string subject)
    {
        var sent = await SendAsync();
        var (ourId, _, html) = sent.Copies[0];
        // The copy left before the mailbox was connected (or from a device whose Sent folder is not watched): the forward
        // is the first mail in Sent to carry its tokens.
        Assert.Equal(InboundOutcome.NotMatched, (await ScanSentAsync(sent, OutlookForward(sent, "AM0PR01MB4444.outlook.test", subject, html))).Outcome);
        var copy = app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId));
        Assert.Null(copy.SentMessageIdHeader);

        // The copy itself, seen later (a rescan of Sent), is still recorded.
        Assert.Equal(InboundOutcome.Recorded, (await ScanSentAsync(sent, OutgoingMail(sent, "AM0PR01MB1111.outlook.test", html, null, []))).Outcome);
        Assert.Equal("AM0PR01MB1111.outlook.test", app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId).SentMessageIdHeader));
    }

    [Fact]
    public async Task A_forward_whose_subject_the_user_rewrote_leaves_the_Message_ID_the_copy_left_with()
    {
        var sent = await SendAsync();
        var (ourId, _, html) = sent.Copies[0];
        Assert.Equal(InboundOutcome.Recorded, (await ScanSentAsync(sent, OutgoingMail(sent, "AM0PR01MB1111.outlook.test", html, null, []))).Outcome);

        // Nothing in its subject says it is a forward; the copy left once already, under another Message-ID.
        Assert.Equal(InboundOutcome.NotMatched, (await ScanSentAsync(sent, OutlookForward(sent, "AM0PR01MB5555.outlook.test", "Look at this", html))).Outcome);
        Assert.Equal("AM0PR01MB1111.outlook.test", app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId).SentMessageIdHeader));
        // Seen again, the copy itself is nothing new.
        Assert.Equal(InboundOutcome.Duplicate, (await ScanSentAsync(sent, OutgoingMail(sent, "AM0PR01MB1111.outlook.test", html, null, []))).Outcome);
    }

    [Fact]
    public async Task A_tracked_forward_is_its_own_copy_and_a_forward_of_it_is_not()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterAsync(new
        {
            from = user.Email, subject = "FW: Budget", to = new[] { "flynn@flynnsarcade.test" },
            html = "<p>See below</p><p>From: Alan</p><p>Budget <a href=\"https://encom.test/budget\">sheet</a></p>", perRecipient = false,
        });
        var copyJson = reg.GetProperty("copies")[0];
        var ourId = copyJson.GetProperty("messageId").GetString()!.Trim('<', '>');
        var html = copyJson.GetProperty("html").GetString()!;
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });
        var sent = new Sent(user, mailbox, reg.GetProperty("id").GetGuid(), []);

        var forwardOfForward = OutlookForward(sent, "AM0PR01MB6666.outlook.test", "FW: FW: Budget", html);
        Assert.Equal(InboundOutcome.NotMatched, (await ScanSentAsync(sent, forwardOfForward)).Outcome);
        var copy = OutgoingMail(sent, "AM0PR01MB7777.outlook.test", html, null, []);
        copy.Subject = "FW: Budget";
        Assert.Equal(InboundOutcome.Recorded, (await ScanSentAsync(sent, copy)).Outcome);
        Assert.Equal("AM0PR01MB7777.outlook.test", app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId).SentMessageIdHeader));
    }

    [Fact]
    public async Task A_sent_copy_whose_Message_ID_is_longer_than_a_copy_keeps_is_still_recorded_by_its_thread()
    {
        var sent = await SendAsync();
        var (ourId, _, html) = sent.Copies[0];
        var outgoing = new MimeMessage();
        outgoing.From.Add(MailboxAddress.Parse(sent.User.Email));
        outgoing.To.Add(MailboxAddress.Parse("flynn@flynnsarcade.test"));
        outgoing.Subject = "Proposal for Flynn's";
        outgoing.MessageId = new string('x', 300) + "@client.test";
        outgoing.Body = new TextPart("html") { Text = html };

        using (var scope = app.Services.CreateScope())
        {
            var scanner = scope.ServiceProvider.GetRequiredService<SentMailScanner>();
            Assert.Equal(InboundOutcome.Recorded, (await scanner.HandleAsync(sent.Mailbox, outgoing, "AAQkAGI2long", CancellationToken.None)).Outcome);
        }
        var copy = app.WithDb(db => db.Copies.Single(c => c.MessageIdHeader == ourId));
        Assert.Null(copy.SentMessageIdHeader);
        Assert.Equal("AAQkAGI2long", copy.ProviderThreadId);
    }

    [Fact]
    public async Task An_auto_reply_is_shown_as_such_by_default_and_never_counts_as_a_reply()
    {
        var sent = await SendAsync();
        var result = await HandleAsync(sent, AutoReply("flynn@flynnsarcade.test", sent.Copies[0].MessageId, "I am out of the office until Monday."));
        Assert.Equal(EventKind.AutoReply, result.Kind);

        var detail = await sent.User.Client.GetJsonAsync($"/api/messages/{sent.MessageId}");
        var flynn = detail.GetProperty("message").GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == "flynn@flynnsarcade.test");
        Assert.False(flynn.GetProperty("counts").GetProperty("replied").GetBoolean());
        Assert.True(flynn.GetProperty("counts").GetProperty("autoReplied").GetBoolean());
        var ev = Assert.Single(detail.GetProperty("events").EnumerateArray());
        Assert.Equal("auto-reply", ev.GetProperty("kind").GetString());
        Assert.Equal("bot", ev.GetProperty("verdict").GetString());
        Assert.Equal(0, detail.GetProperty("hiddenMachineEvents").GetInt32());
    }

    [Fact]
    public async Task An_auto_reply_saying_its_author_has_left_is_recorded_as_such()
    {
        var sent = await SendAsync();
        var result = await HandleAsync(sent, AutoReply("flynn@flynnsarcade.test", sent.Copies[0].MessageId,
            "Thank you for your email. I no longer work at Flynn's; please write to info@flynnsarcade.test."));
        Assert.Equal(EventKind.AutoReply, result.Kind);
        var inbound = Assert.Single(Inbound(sent));
        Assert.True(inbound.Departed);
        Assert.Contains("no longer there", app.WithDb(db => db.Events.Single(e => e.TrackedMessageId == sent.MessageId).Reason));

        // An ordinary out-of-office notice is not a departure.
        await HandleAsync(sent, AutoReply("alan@encom.test", sent.Copies[1].MessageId, "I am out of the office until Monday."));
        Assert.False(Inbound(sent).Single(i => i.FromAddress == "alan@encom.test").Departed);
    }

    [Fact]
    public async Task A_help_desks_acknowledgement_is_an_auto_reply_and_its_agents_answer_a_reply()
    {
        // Mail to a company's support address: its help desk acknowledges the request (no auto-reply header), then an
        // agent answers through Zendesk, which marks all its mail Auto-Submitted: auto-generated.
        var sent = await SendAsync();
        var acknowledgement = Reply("Flynn's Support <support@flynnsarcade.test>", sent.Copies[0].MessageId,
            text: "Your request (48213) has been received and is being reviewed by our support staff.\n\nTo add additional comments, reply to this email.");
        acknowledgement.Subject = "[Flynn's Support] Request received: Proposal for Flynn's";
        var result = await HandleAsync(sent, acknowledgement);
        Assert.Equal(EventKind.AutoReply, result.Kind);
        Assert.StartsWith("auto-reply from support@flynnsarcade.test (not a recipient: forwarded or added): help desk acknowledgement", result.Detail, StringComparison.Ordinal);

        var agent = Reply("Flynn's Support <support@flynnsarcade.test>", sent.Copies[0].MessageId,
            text: "##- Please type your reply above this line -##\n\nHi, thanks for the deck. I've passed it to Flynn, who will call you on Tuesday.\n\nRoy");
        agent.Subject = "[Flynn's Support] Re: Proposal for Flynn's";
        agent.Headers.Add("X-Mailer", "Zendesk Mailer");
        agent.Headers.Add("X-Zendesk-From-Account-Id", "1a2b3c");
        agent.Headers.Add("Auto-Submitted", "auto-generated");
        agent.Headers.Add("X-Auto-Response-Suppress", "All");
        Assert.Equal(EventKind.Reply, (await HandleAsync(sent, agent)).Kind);

        var detail = await sent.User.Client.GetJsonAsync($"/api/messages/{sent.MessageId}");
        var flynn = detail.GetProperty("message").GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == "flynn@flynnsarcade.test");
        Assert.True(flynn.GetProperty("counts").GetProperty("replied").GetBoolean());
        Assert.True(flynn.GetProperty("counts").GetProperty("autoReplied").GetBoolean());
        Assert.Equal([EventKind.AutoReply, EventKind.Reply], Inbound(sent).OrderBy(i => i.Id).Select(i => i.Kind));
    }

    static MimeMessage ReadReceipt(string from, string originalId, string disposition, bool inReplyTo) =>
        TestReceipts.Read(from, "sender@sender.test", originalId, disposition, "Proposal for Flynn's", inReplyTo);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_read_receipt_of_a_displayed_message_is_an_open_by_its_reader_and_never_a_reply(bool inReplyTo)
    {
        var sent = await SendAsync();
        var result = await HandleAsync(sent, ReadReceipt("flynn@flynnsarcade.test", sent.Copies[0].MessageId, "manual-action/MDN-sent-automatically; displayed", inReplyTo));

        Assert.Equal(InboundOutcome.Recorded, result.Outcome);
        Assert.Equal(EventKind.Open, result.Kind);
        var inbound = Assert.Single(Inbound(sent));
        // The message itself is a receipt, which no sequence acts on; found by the id it answers or the one its report names.
        Assert.Equal(EventKind.Receipt, inbound.Kind);
        Assert.Equal(inReplyTo ? MatchedBy.InReplyTo : MatchedBy.OriginalMessageId, inbound.MatchedBy);

        var detail = await sent.User.Client.GetJsonAsync($"/api/messages/{sent.MessageId}");
        var flynn = detail.GetProperty("message").GetProperty("recipients").EnumerateArray().Single(r => r.GetProperty("address").GetString() == "flynn@flynnsarcade.test");
        var counts = flynn.GetProperty("counts");
        Assert.Equal(1, counts.GetProperty("opens").GetInt32());
        Assert.False(counts.GetProperty("replied").GetBoolean());
        Assert.False(counts.GetProperty("autoReplied").GetBoolean());
        var ev = Assert.Single(detail.GetProperty("events").EnumerateArray());
        Assert.Equal("open", ev.GetProperty("kind").GetString());
        Assert.Equal("human", ev.GetProperty("verdict").GetString());
        Assert.Contains("read receipt", ev.GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_receipt_of_a_message_deleted_unread_is_a_machine_event_on_the_readers_row_and_no_open()
    {
        // One copy for everyone: the receipt's Final-Recipient says whose it is.
        var sent = await SendAsync(perRecipient: false);
        var result = await HandleAsync(sent, ReadReceipt("alan@encom.test", sent.Copies[0].MessageId, "automatic-action/MDN-sent-automatically; deleted", inReplyTo: false));

        Assert.Equal(EventKind.Receipt, result.Kind);
        var alan = app.WithDb(db => db.Recipients.Single(r => r.TrackedMessageId == sent.MessageId && r.Address == "alan@encom.test").Id);
        var inbound = Assert.Single(Inbound(sent));
        Assert.Equal((EventKind.Receipt, alan), (inbound.Kind, inbound.RecipientId));
        var stored = app.WithDb(db => db.Events.Single(e => e.TrackedMessageId == sent.MessageId));
        Assert.Equal((EventKind.Receipt, Verdict.Bot, (Guid?)alan), (stored.Kind, stored.Verdict, stored.RecipientId));

        // Shown without asking for machines, as bounces are: the sender wants to know it was deleted unread.
        var shown = await sent.User.Client.GetJsonAsync($"/api/messages/{sent.MessageId}");
        Assert.Equal(0, shown.GetProperty("hiddenMachineEvents").GetInt32());
        var ev = Assert.Single(shown.GetProperty("events").EnumerateArray());
        Assert.Equal("bot", ev.GetProperty("verdict").GetString());
        Assert.Equal("receipt", ev.GetProperty("kind").GetString());
        Assert.Contains("deleted without being read", ev.GetProperty("reason").GetString(), StringComparison.Ordinal);
        foreach (var r in shown.GetProperty("message").GetProperty("recipients").EnumerateArray())
        {
            Assert.Equal(0, r.GetProperty("counts").GetProperty("opens").GetInt32());
            Assert.False(r.GetProperty("counts").GetProperty("replied").GetBoolean());
        }
    }
}

public sealed class InboundPipelineOnSqlite(SqliteApp app) : InboundPipelineTests(app), IClassFixture<SqliteApp>;

public sealed class InboundPipelineOnPostgres(PostgresApp app) : InboundPipelineTests(app), IClassFixture<PostgresApp>;
