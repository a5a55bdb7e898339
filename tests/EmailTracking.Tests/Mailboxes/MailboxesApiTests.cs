using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Mailboxes;

public abstract class MailboxesApiTests(AppFactory app)
{
    [Fact]
    public async Task Bad_connection_requests_get_problems_by_field_and_nothing_is_stored()
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address = "someone-else@encom.test", username = "", password = "",
            imap = new { host = "bad host!", port = 993 }, smtp = new { host = "smtp.sender.test", port = 70000 },
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        foreach (var field in new[] { "address", "username", "password", "imap.host", "smtp.port" })
        {
            Assert.True(errors.TryGetProperty(field, out _), $"no error for {field}: {errors}");
        }
        Assert.Empty((await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());

        var nonsense = await user.Client.PostAsync("/api/mailboxes/imap", new StringContent("{not json", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, nonsense.StatusCode);
    }

    [Fact]
    public async Task A_host_with_its_port_a_web_address_or_a_space_is_told_what_is_wrong_not_that_it_is_required()
    {
        var user = await app.NewUserAsync();
        foreach (var (imap, smtp, imapSays, smtpSays) in new[]
        {
            ("imap.example.com:993", "smtp.example.com:587",
                "'imap.example.com:993' has a port in it: give the host alone (imap.example.com) and the port (993) in its own field.",
                "'smtp.example.com:587' has a port in it: give the host alone (smtp.example.com) and the port (587) in its own field."),
            ("https://imap.example.com", "smtps://smtp.example.com:465/",
                "'https://imap.example.com' is a web address, not a host name: give the host alone (imap.example.com).",
                "'smtps://smtp.example.com:465/' is a web address, not a host name: give the host alone (smtp.example.com) and the port (465) in its own field."),
            ("imap example.com", "smtp_example com",
                "'imap example.com' is not a valid host name: use letters, digits, hyphens and dots, such as imap.example.com, or an IP address.",
                "'smtp_example com' is not a valid host name: use letters, digits, hyphens and dots, such as smtp.example.com, or an IP address."),
            ("  ", "[::1]:25", "The IMAP server's host name is required.", "'[::1]:25' has a port in it: give the host alone (::1) and the port (25) in its own field."),
        })
        {
            var res = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
            {
                address = user.Email, username = "u", password = "p", imap = new { host = imap, port = 993 }, smtp = new { host = smtp, port = 587 },
            }, TestApi.Json);
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, text);
            var errors = JsonDocument.Parse(text).RootElement.GetProperty("errors");
            Assert.Equal(imapSays, errors.GetProperty("imap.host")[0].GetString());
            Assert.Equal(smtpSays, errors.GetProperty("smtp.host")[0].GetString());
        }
        Assert.Empty((await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());
    }

    [Fact]
    public async Task A_server_that_cannot_be_reached_is_a_clear_422_and_nothing_is_stored()
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address = user.Email, username = "me", password = "secret",
            imap = new { host = "127.0.0.1", port = 1, security = "none" }, smtp = new { host = "127.0.0.1", port = 1, security = "none" },
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("The mailbox could not be connected.", problem.GetProperty("title").GetString());
        Assert.Contains("IMAP server 127.0.0.1:1", problem.GetProperty("detail").GetString());
        Assert.Empty((await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());
    }

    [Fact]
    public async Task A_mailbox_may_be_connected_and_sent_from_with_its_domain_written_the_other_way()
    {
        var user = await app.NewUserAsync();
        var name = $"me-{Guid.NewGuid():N}"[..15];
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = name + "@例え.jp" })).StatusCode);
        // The alias is the user's in punycode too: the connection goes on to the server (which cannot be reached here).
        var res = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address = name + "@xn--r8jz45g.jp", username = "me", password = "secret",
            imap = new { host = "127.0.0.1", port = 1, security = "none" }, smtp = new { host = "127.0.0.1", port = 1, security = "none" },
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, res.StatusCode);

        // A mailbox connected in Unicode is the one that sends as the punycode form (disabled here, so it says so).
        var mailbox = new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = name + "@例え.jp", ProtectedSecret = "x",
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = name + "@xn--r8jz45g.jp", subject = "Hi", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Conflict, send.StatusCode);
    }

    [Fact]
    public async Task Another_teams_mailbox_cannot_be_removed_or_seen_and_sending_needs_a_mailbox()
    {
        var owner = await app.NewUserAsync();
        var stranger = await app.NewUserAsync();
        var mailbox = new MailboxConnection
        {
            TeamId = owner.TeamId, UserId = owner.Id, Kind = MailboxKind.Imap, Address = owner.Email, ProtectedSecret = "x",
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        app.WithDb(db => { db.Mailboxes.Add(mailbox); return db.SaveChanges(); });

        Assert.Equal(HttpStatusCode.NotFound, (await stranger.Client.DeleteAsync($"/api/mailboxes/{mailbox.Id}")).StatusCode);
        Assert.Empty((await stranger.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());
        Assert.Single((await owner.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());

        // The stranger cannot send through it by naming it.
        var send = await stranger.Client.PostAsJsonAsync("/api/messages/send", new
        {
            mailboxId = mailbox.Id, subject = "Hi", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadRequest, send.StatusCode);
        Assert.Contains("mailboxId", await send.Content.ReadAsStringAsync());

        // Nor can the owner through a disabled one; without any mailbox the answer says what to do.
        var noMailbox = await stranger.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = stranger.Email, subject = "Hi", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadRequest, noMailbox.StatusCode);
        Assert.Contains("Connect it first", await noMailbox.Content.ReadAsStringAsync());
        var disabled = await owner.Client.PostAsJsonAsync("/api/messages/send", new
        {
            mailboxId = mailbox.Id, subject = "Hi", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Conflict, disabled.StatusCode);
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == owner.Id || m.UserId == stranger.Id)));

        Assert.Equal(HttpStatusCode.NoContent, (await owner.Client.DeleteAsync($"/api/mailboxes/{mailbox.Id}")).StatusCode);
        Assert.Empty((await owner.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());
    }
}

public sealed class MailboxesApiOnSqlite(SqliteApp app) : MailboxesApiTests(app), IClassFixture<SqliteApp>;

public sealed class MailboxesApiOnPostgres(PostgresApp app) : MailboxesApiTests(app), IClassFixture<PostgresApp>;
