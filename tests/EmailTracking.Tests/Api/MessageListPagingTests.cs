using System.Net;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Api;

/// <summary>
/// The web app's message list in pages of 100, on each database: newest first by the time the mail left (or was
/// registered, while it has not left), ties broken by id so that no message is shown twice or skipped across a page
/// boundary; "Newer" and "Older" links that stay put while new messages arrive; the position and the count; a cursor
/// that cannot be read showing the first page; and each reader seeing only the messages they saw before there were pages.
/// </summary>
public abstract class MessageListPagingTests(AppFactory app)
{
    const string Password = "Correct-horse-battery-9";
    static readonly DateTimeOffset Base = new(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);

    /// <summary>A tracked message with one recipient, written as registration writes it, at the times given.</summary>
    async Task<Guid> AddMessageAsync(TestUser owner, string subject, DateTimeOffset createdAt, DateTimeOffset? sentAt)
    {
        var message = new TrackedMessage
        {
            TeamId = owner.TeamId, UserId = owner.Id, FromAddress = owner.Email, Subject = subject, PerRecipient = true,
            CreatedAt = createdAt, SentAt = sentAt,
        };
        var copy = new MessageCopy
        {
            TrackedMessageId = message.Id, TeamId = owner.TeamId, UserId = owner.Id,
            MessageIdHeader = $"{Guid.NewGuid():N}@localhost", PixelToken = $"{Guid.NewGuid():N}",
        };
        var recipient = new Recipient { TrackedMessageId = message.Id, Address = "alan@encom.test", CopyId = copy.Id };
        copy.RecipientId = recipient.Id;
        await app.WithDbAsync(async db =>
        {
            db.AddRange(message, copy, recipient);
            await db.SaveChangesAsync();
        });
        return message.Id;
    }

    sealed record ListPage(List<string> Ids, List<string> Subjects, string? Showing, string? Newer, string? Older);

    static async Task<ListPage> GetAsync(HttpClient browser, string url)
    {
        var res = await browser.GetAsync(url);
        var html = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"GET {url}: {(int)res.StatusCode}\n{html}");
        var doc = new HtmlParser().ParseDocument(html);
        var bodies = doc.QuerySelectorAll("#messages tbody.message").ToList();
        return new ListPage(
            bodies.Select(b => b.GetAttribute("data-message-id")!).ToList(),
            bodies.Select(b => b.QuerySelector(".subject a")!.TextContent).ToList(),
            doc.QuerySelector("#showing")?.TextContent.Trim(),
            (doc.QuerySelector("#pager a[rel=prev]") as IHtmlAnchorElement)?.GetAttribute("href"),
            (doc.QuerySelector("#pager a[rel=next]") as IHtmlAnchorElement)?.GetAttribute("href"));
    }

    [Fact]
    public async Task A_member_with_105_messages_pages_through_all_of_them_newest_sent_first_and_back()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var team = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: team, role: TeamRole.Member, password: Password);

        // In list order: a draft (not sent: its registration time counts), the message registered first of all but
        // sent last, 97 more, three sent in the same second across the page boundary (places 100-102), and three older.
        var expected = new List<Guid>
        {
            await AddMessageAsync(member, "Draft", Base.AddDays(1), null),
            await AddMessageAsync(member, "Registered first, sent last", Base, Base.AddHours(20)),
        };
        for (var i = 0; i < 97; i++) expected.Add(await AddMessageAsync(member, $"Sent {i:00}", Base.AddMinutes(1 + i), Base.AddHours(10).AddMinutes(-i)));
        var tied = new List<Guid>();
        for (var i = 0; i < 3; i++) tied.Add(await AddMessageAsync(member, $"Tied {i}", Base.AddMinutes(200 + i), Base.AddHours(5)));
        expected.AddRange(tied);
        for (var i = 0; i < 3; i++) expected.Add(await AddMessageAsync(member, $"Old {i}", Base.AddMinutes(300 + i), Base.AddHours(1).AddMinutes(-i)));
        // Someone else's in the team, and another team's: neither is the member's to see.
        var colleague = await AddMessageAsync(admin, "The admin's own", Base.AddMinutes(5), Base.AddHours(30));
        var stranger = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var foreign = await AddMessageAsync(stranger, "Another team's", Base.AddMinutes(6), Base.AddHours(40));

        var browser = await WebSession.SignInAsync(app, member.Email, Password);
        var first = await GetAsync(browser, "/");
        Assert.Equal(100, first.Ids.Count);
        Assert.Equal("Showing 1–100 of 105 messages", first.Showing);
        Assert.Equal(["Draft", "Registered first, sent last", "Sent 00"], first.Subjects.Take(3));
        Assert.Null(first.Newer);
        Assert.NotNull(first.Older);

        var older = await GetAsync(browser, first.Older);
        Assert.Equal(5, older.Ids.Count);
        Assert.Equal("Showing 101–105 of 105 messages", older.Showing);
        Assert.Null(older.Older);
        Assert.NotNull(older.Newer);
        // Every message exactly once, in list order; the tied three in one order, the database's, on both pages.
        var all = first.Ids.Concat(older.Ids).Select(Guid.Parse).ToList();
        Assert.Equal(105, all.Distinct().Count());
        Assert.Equal(expected[..99], all[..99]);
        Assert.Equal(tied.Order(), all[99..102].Order());
        Assert.Equal(expected[102..], all[102..]);
        Assert.DoesNotContain(colleague, all);
        Assert.DoesNotContain(foreign, all);

        var back = await GetAsync(browser, older.Newer);
        Assert.Equal(first.Ids, back.Ids);
        Assert.Equal("Showing 1–100 of 105 messages", back.Showing);
        Assert.Null(back.Newer);

        // A message sent while the reader is on the second page moves nothing under them: the same link shows the same
        // five, now 102-106, and Newer shows the hundred before them, no longer the first page.
        await AddMessageAsync(member, "Just sent", Base.AddDays(2), Base.AddDays(2));
        var stable = await GetAsync(browser, first.Older);
        Assert.Equal(older.Ids, stable.Ids);
        Assert.Equal("Showing 102–106 of 106 messages", stable.Showing);
        var above = await GetAsync(browser, stable.Newer!);
        Assert.Equal("Showing 2–101 of 106 messages", above.Showing);
        Assert.Equal(first.Ids, above.Ids);
        Assert.NotNull(above.Newer);

        // A member asking for the team's list gets their own, as before there were pages.
        Assert.Equal("Showing 1–100 of 106 messages", (await GetAsync(browser, "/?scope=team")).Showing);
    }

    [Fact]
    public async Task An_admin_pages_through_the_teams_messages_and_their_own_apart_and_another_team_sees_none()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var team = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: team, role: TeamRole.Member, password: Password);
        for (var i = 0; i < 60; i++) await AddMessageAsync(member, $"Member {i}", Base.AddMinutes(i), Base.AddHours(1).AddMinutes(i));
        for (var i = 0; i < 50; i++) await AddMessageAsync(admin, $"Admin {i}", Base.AddMinutes(i), Base.AddHours(2).AddMinutes(i));

        var browser = await WebSession.SignInAsync(app, admin.Email, Password);
        var mine = await GetAsync(browser, "/");
        Assert.Equal("Showing 1–50 of 50 messages", mine.Showing);
        Assert.All(mine.Subjects, s => Assert.StartsWith("Admin", s));
        Assert.Null(mine.Older);

        var teamList = await GetAsync(browser, "/?scope=team");
        Assert.Equal("Showing 1–100 of 110 messages", teamList.Showing);
        Assert.Equal("Admin 49", teamList.Subjects[0]);
        // The next page stays in the team's list.
        Assert.Contains("scope=team", teamList.Older);
        var teamOlder = await GetAsync(browser, teamList.Older!);
        Assert.Equal("Showing 101–110 of 110 messages", teamOlder.Showing);
        Assert.All(teamOlder.Subjects, s => Assert.StartsWith("Member", s));

        // A cursor from the team's list, in the admin's own list: none of theirs is older than that place, so the first page.
        var own = await GetAsync(browser, teamList.Older!.Replace("scope=team&", ""));
        Assert.Equal("Showing 1–50 of 50 messages", own.Showing);

        var stranger = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var theirs = await WebSession.SignInAsync(app, stranger.Email, Password);
        var none = await GetAsync(theirs, "/?scope=team" + teamList.Older![teamList.Older.IndexOf('&')..]);
        Assert.Empty(none.Ids);
        Assert.Null(none.Showing);
    }

    [Theory]
    [InlineData("older=not-a-cursor")]
    [InlineData("newer=not-a-cursor")]
    [InlineData("older=")]
    [InlineData("older=123_not-hex")]
    [InlineData("older=-5_0123456789abcdef0123456789abcdef")]
    [InlineData("older=99999999999999999999999_0123456789abcdef0123456789abcdef")]
    [InlineData("older=3155378975999999999_0123456789abcdef0123456789abcdef")]
    [InlineData("newer=0_0123456789abcdef0123456789abcdef")]
    [InlineData("older=0_0123456789abcdef0123456789abcdef")]
    [InlineData("older=1_2_3")]
    public async Task A_cursor_that_cannot_be_read_or_points_past_either_end_shows_the_first_page(string query)
    {
        var user = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        for (var i = 0; i < 3; i++) await AddMessageAsync(user, $"Message {i}", Base.AddMinutes(i), Base.AddHours(1).AddMinutes(i));
        var browser = await WebSession.SignInAsync(app, user.Email, Password);
        var page = await GetAsync(browser, "/?" + query);
        Assert.Equal(["Message 2", "Message 1", "Message 0"], page.Subjects);
        Assert.Equal("Showing 1–3 of 3 messages", page.Showing);
        Assert.Null(page.Newer);
        Assert.Null(page.Older);
    }
}

public sealed class MessageListPagingOnSqlite(SqliteApp app) : MessageListPagingTests(app), IClassFixture<SqliteApp>;

public sealed class MessageListPagingOnPostgres(PostgresApp app) : MessageListPagingTests(app), IClassFixture<PostgresApp>;
