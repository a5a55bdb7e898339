using System.Net;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The Documents and Sequences pages in pages of 100, on each database (they listed the newest 500 without saying so,
/// and an older one could not be reached): newest first by creation, ties broken by id so that none is shown twice or
/// skipped across a page boundary; "Newer" and "Older" links; the position and the count; a document on a later page
/// that "Add to email" and "Remove" work on without leaving that page; and each reader seeing only their own.
/// </summary>
public abstract class DocumentAndSequencePagingTests(AppFactory app)
{
    const string Password = "Correct-horse-battery-9";
    static readonly DateTimeOffset Base = new(2026, 10, 1, 9, 0, 0, TimeSpan.Zero);

    sealed record ListPage(List<Guid> Ids, string? Showing, string? Newer, string? Older, IHtmlDocument Html);

    static async Task<ListPage> GetAsync(HttpClient browser, string url, string rows, string id)
    {
        var res = await browser.GetAsync(url);
        var html = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"GET {url}: {(int)res.StatusCode}\n{html}");
        return Parse(html, rows, id);
    }

    static ListPage Parse(string html, string rows, string id)
    {
        var doc = new HtmlParser().ParseDocument(html);
        return new ListPage(
            doc.QuerySelectorAll(rows).Select(r => Guid.Parse(r.GetAttribute(id)!)).ToList(),
            doc.QuerySelector("#showing")?.TextContent.Trim(),
            (doc.QuerySelector("#pager a[rel=prev]") as IHtmlAnchorElement)?.GetAttribute("href"),
            (doc.QuerySelector("#pager a[rel=next]") as IHtmlAnchorElement)?.GetAttribute("href"),
            doc);
    }

    /// <summary>Pages from the first to the last and back, checking what each says; every id in the order shown.</summary>
    static async Task<List<Guid>> AllPagesAsync(HttpClient browser, string path, string rows, string id, string noun, int total)
    {
        var all = new List<Guid>();
        var pages = new List<ListPage>();
        string? next = path;
        while (next is not null)
        {
            var page = await GetAsync(browser, next, rows, id);
            Assert.Equal(Math.Min(100, total - all.Count), page.Ids.Count);
            Assert.Equal($"Showing {all.Count + 1}–{all.Count + page.Ids.Count} of {total} {noun}", page.Showing);
            Assert.Equal(pages.Count == 0, page.Newer is null);
            all.AddRange(page.Ids);
            pages.Add(page);
            next = page.Older;
            Assert.True(pages.Count <= 10, "the Older links go round in a circle");
        }
        Assert.Equal(total, all.Count);
        // Back from the last page by Newer: the same pages, in the same order.
        for (var i = pages.Count - 1; i > 0; i--)
        {
            var back = await GetAsync(browser, pages[i].Newer!, rows, id);
            Assert.Equal(pages[i - 1].Ids, back.Ids);
        }
        return all;
    }

    static ContentItem Document(TestUser owner, string name, DateTimeOffset createdAt) => new()
    {
        TeamId = owner.TeamId, UserId = owner.Id, Name = name, FileType = ContentFileType.Pdf, OriginalSha256 = new string('a', 64),
        OriginalSize = 1000, PdfSha256 = new string('a', 64), PdfSize = 1000, PageCount = 1, CreatedAt = createdAt,
    };

    [Fact]
    public async Task Every_one_of_205_documents_is_reached_page_by_page_and_one_on_the_last_page_can_be_linked_and_removed()
    {
        var user = await app.NewUserAsync(password: Password);
        var stranger = await app.NewUserAsync(password: Password);
        // In list order: 99, three uploaded in the same second across the first page's end (places 100-102), 103 older.
        var expected = new List<Guid>();
        var tied = new List<Guid>();
        var removed = Document(user, "removed.pdf", Base.AddDays(10));
        removed.DeletedAt = Base.AddDays(11);
        await app.WithDbAsync(async db =>
        {
            for (var i = 0; i < 99; i++)
            {
                var d = Document(user, $"new {i:000}.pdf", Base.AddDays(5).AddMinutes(-i));
                db.Contents.Add(d);
                expected.Add(d.Id);
            }
            for (var i = 0; i < 3; i++)
            {
                var d = Document(user, $"tied {i}.pdf", Base.AddDays(4));
                db.Contents.Add(d);
                tied.Add(d.Id);
            }
            expected.AddRange(tied);
            for (var i = 0; i < 103; i++)
            {
                var d = Document(user, $"old {i:000}.pdf", Base.AddDays(3).AddMinutes(-i));
                db.Contents.Add(d);
                expected.Add(d.Id);
            }
            db.Contents.AddRange(removed, Document(stranger, "theirs.pdf", Base.AddDays(6)));
            await db.SaveChangesAsync();
        });

        var browser = await WebSession.SignInAsync(app, user.Email, Password);
        var all = await AllPagesAsync(browser, "/documents", "#documents li.document", "data-content-id", "documents", 205);
        Assert.Equal(205, all.Distinct().Count());
        Assert.Equal(expected[..99], all[..99]);
        Assert.Equal(tied.Order(), all[99..102].Order());
        Assert.Equal(expected[102..], all[102..]);
        Assert.DoesNotContain(removed.Id, all);

        // The oldest, on the last page: "Add to email" makes its link (it was looked for among the newest 500 only) and
        // the page comes back as it was, the last one; "Remove" goes back to that page too.
        var first = await GetAsync(browser, "/documents", "#documents li.document", "data-content-id");
        var second = await GetAsync(browser, first.Older!, "#documents li.document", "data-content-id");
        var last = await GetAsync(browser, second.Older!, "#documents li.document", "data-content-id");
        var oldest = expected[^1];
        var form = (IHtmlFormElement)last.Html.QuerySelector($"li[data-content-id='{oldest}'] button.add-link")!.Closest("form")!;
        var token = form.QuerySelector("input[name=__RequestVerificationToken]")!.GetAttribute("value")!;
        var res = await browser.PostAsync(form.GetAttribute("action"), new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        var html = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"{(int)res.StatusCode}\n{html}");
        var linked = Parse(html, "#documents li.document", "data-content-id");
        Assert.Contains("old 102.pdf", linked.Html.QuerySelector("#new-link-html")!.GetAttribute("value"));
        Assert.Equal(last.Ids, linked.Ids);
        Assert.Equal("Showing 201–205 of 205 documents", linked.Showing);

        var remove = (IHtmlFormElement)last.Html.QuerySelector($"li[data-content-id='{oldest}'] button.danger")!.Closest("form")!;
        res = await browser.PostAsync(remove.GetAttribute("action"), new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var after = await GetAsync(browser, res.Headers.Location!.OriginalString, "#documents li.document", "data-content-id");
        Assert.Equal(last.Ids[..^1], after.Ids);
        Assert.Equal("Showing 201–204 of 204 documents", after.Showing);

        // The stranger sees their one document and no pages.
        var theirs = await GetAsync(await WebSession.SignInAsync(app, stranger.Email, Password), "/documents", "#documents li.document", "data-content-id");
        Assert.Single(theirs.Ids);
        Assert.Equal("Showing 1–1 of 1 document", theirs.Showing);
        Assert.Null(theirs.Older);
        Assert.Null(theirs.Newer);
    }

    [Fact]
    public async Task Every_one_of_a_teams_205_sequences_is_reached_page_by_page_by_its_admin_and_a_member_sees_their_own()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: Password);
        var team = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: team, role: TeamRole.Member, password: Password);
        var expected = new List<Guid>();
        var tied = new List<Guid>();
        var mine = new List<Guid>();
        await app.WithDbAsync(async db =>
        {
            var mailbox = new MailboxConnection
            {
                TeamId = member.TeamId, UserId = member.Id, Kind = MailboxKind.Imap, Address = member.Email, ProtectedSecret = "unused",
                Status = MailboxStatus.Active, CreatedAt = Base,
            };
            db.Mailboxes.Add(mailbox);
            Sequence Add(TestUser owner, string name, DateTimeOffset createdAt)
            {
                var s = new Sequence { TeamId = owner.TeamId, UserId = owner.Id, Name = name, MailboxId = mailbox.Id, TimeZone = "UTC", CreatedAt = createdAt };
                db.Sequences.Add(s);
                if (owner == member) mine.Add(s.Id);
                return s;
            }
            // Places 100-102 share a creation time; every other one is its own minute; a few are the member's.
            for (var i = 0; i < 99; i++) expected.Add(Add(i % 20 == 0 ? member : admin, $"New {i:000}", Base.AddDays(5).AddMinutes(-i)).Id);
            for (var i = 0; i < 3; i++) tied.Add(Add(admin, $"Tied {i}", Base.AddDays(4)).Id);
            expected.AddRange(tied);
            for (var i = 0; i < 103; i++) expected.Add(Add(i % 20 == 0 ? member : admin, $"Old {i:000}", Base.AddDays(3).AddMinutes(-i)).Id);
            await db.SaveChangesAsync();
        });

        var browser = await WebSession.SignInAsync(app, admin.Email, Password);
        var all = await AllPagesAsync(browser, "/sequences", "#sequences tbody tr", "data-sequence-id", "sequences", 205);
        Assert.Equal(205, all.Distinct().Count());
        Assert.Equal(expected[..99], all[..99]);
        Assert.Equal(tied.Order(), all[99..102].Order());
        Assert.Equal(expected[102..], all[102..]);

        // A sequence made while the admin reads the second page moves nothing under them.
        var first = await GetAsync(browser, "/sequences", "#sequences tbody tr", "data-sequence-id");
        var second = await GetAsync(browser, first.Older!, "#sequences tbody tr", "data-sequence-id");
        await app.WithDbAsync(async db =>
        {
            db.Sequences.Add(new Sequence
            {
                TeamId = admin.TeamId, UserId = admin.Id, Name = "Just made", MailboxId = Guid.NewGuid(), TimeZone = "UTC", CreatedAt = Base.AddDays(9),
            });
            await db.SaveChangesAsync();
        });
        var stable = await GetAsync(browser, first.Older!, "#sequences tbody tr", "data-sequence-id");
        Assert.Equal(second.Ids, stable.Ids);
        Assert.Equal("Showing 102–201 of 206 sequences", stable.Showing);

        var memberPages = await AllPagesAsync(await WebSession.SignInAsync(app, member.Email, Password), "/sequences", "#sequences tbody tr", "data-sequence-id",
            "sequences", mine.Count);
        Assert.Equal(mine, memberPages);
    }
}

public sealed class DocumentAndSequencePagingOnSqlite(SqliteApp app) : DocumentAndSequencePagingTests(app), IClassFixture<SqliteApp>;

public sealed class DocumentAndSequencePagingOnPostgres(PostgresApp app) : DocumentAndSequencePagingTests(app), IClassFixture<PostgresApp>;
