using System.Net;
using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The Mailboxes page as the server renders it, on each database: a connect form it refuses comes back with everything
/// the page shows on GET, the messages a mailbox could not read among them (it came back without them).
/// </summary>
public abstract class MailboxesPageTests(AppFactory app)
{
    const string Password = "Correct-horse-battery-9";

    /// <summary>A mailbox's row as written, without the antiforgery token (each answer has its own).</summary>
    static string? RowWithoutToken(AngleSharp.Html.Dom.IHtmlDocument doc, Guid mailbox)
    {
        if (doc.QuerySelector($"#mailboxes tr[data-mailbox-id='{mailbox}']") is not { } row) return null;
        foreach (var token in row.QuerySelectorAll("input[name=__RequestVerificationToken]")) token.Remove();
        return row.OuterHtml;
    }

    [Fact]
    public async Task A_refused_connect_form_comes_back_with_the_messages_the_mailboxes_could_not_read()
    {
        var user = await app.NewUserAsync(password: Password);
        var box = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, ProtectedSecret = "unused",
            Status = MailboxStatus.Active, CreatedAt = DateTimeOffset.UtcNow,
        };
        await app.WithDbAsync(async db =>
        {
            db.Mailboxes.Add(box);
            db.UnreadableMessages.AddRange(
                new UnreadableMessage
                {
                    ConnectionId = box.Id, UserId = user.Id, ProviderId = "imap:INBOX:7:41", Folder = "INBOX", Size = 4133,
                    Reason = "not a readable MIME message: Failed to parse message headers.",
                    ReceivedAt = new DateTimeOffset(2026, 11, 20, 9, 30, 0, TimeSpan.Zero), SeenAt = DateTimeOffset.UtcNow,
                },
                new UnreadableMessage
                {
                    ConnectionId = box.Id, UserId = user.Id, ProviderId = "imap:Sent:7:12", Folder = "Sent", Size = 2_400_000,
                    Reason = "could not be handled (ArgumentException): an example of a failure in our code",
                    ReceivedAt = new DateTimeOffset(2026, 11, 21, 16, 5, 0, TimeSpan.Zero), SeenAt = DateTimeOffset.UtcNow,
                });
            await db.SaveChangesAsync();
        });
        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var parser = new HtmlParser();

        var get = parser.ParseDocument(await browser.GetStringAsync("/mailboxes"));
        var shown = get.QuerySelector($"#mailboxes tr[data-mailbox-id='{box.Id}'] .unreadable")!.TextContent;
        Assert.Contains("2 messages could not be read", shown);
        var token = get.QuerySelector("#connect-imap input[name=__RequestVerificationToken]")!.GetAttribute("value")!;

        // No password and no servers: refused by the form's own checks, before any server is tried.
        var res = await browser.PostAsync("/mailboxes?handler=Connect", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Form.Address"] = "alias@encom.test", ["Form.Username"] = "flynn", ["Form.Password"] = "",
            ["Form.ImapHost"] = "", ["Form.ImapPort"] = "993", ["Form.ImapSecurity"] = "Tls",
            ["Form.SmtpHost"] = "", ["Form.SmtpPort"] = "587", ["Form.SmtpSecurity"] = "StartTls",
            ["__RequestVerificationToken"] = token,
        }));
        var html = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, $"{(int)res.StatusCode}\n{html}");
        var refused = parser.ParseDocument(html);
        Assert.NotEmpty(refused.QuerySelectorAll("#connect-imap .errors li"));
        Assert.Equal("alias@encom.test", refused.QuerySelector("#connect-imap input[name='Form.Address']")!.GetAttribute("value"));
        // The mailbox's row as GET shows it, its unreadable messages and the button that clears them included.
        Assert.Equal(RowWithoutToken(get, box.Id), RowWithoutToken(refused, box.Id));
        Assert.Equal(2, refused.QuerySelectorAll($"#mailboxes tr[data-mailbox-id='{box.Id}'] .unreadable li").Length);
    }
}

public sealed class MailboxesPageOnSqlite(SqliteApp app) : MailboxesPageTests(app), IClassFixture<SqliteApp>;

public sealed class MailboxesPageOnPostgres(PostgresApp app) : MailboxesPageTests(app), IClassFixture<PostgresApp>;
