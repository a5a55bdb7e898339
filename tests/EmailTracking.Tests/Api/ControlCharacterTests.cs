using System.Net;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Api;

/// <summary>
/// Control characters in what a request stores. PostgreSQL text cannot hold U+0000: stored as given, a NUL failed the
/// insert with a 500 there while SQLite kept it. A URL holding one is refused with a 400 that says why (cleaned, it would
/// be another address than the one given); free text (names, descriptions) is one line without control characters, as
/// subjects are: a line break and "Bcc: …" in a name, a BEL or an ESC, are nothing anyone means to show.
/// </summary>
public abstract class ControlCharacterTests(AppFactory app)
{
    /// <summary>A JSON body written by hand, so that its escapes (\u0000, \r\n) are sent as written.</summary>
    static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_webhook_url_with_a_control_character_is_a_400_and_its_description_is_stored_as_one_clean_line()
    {
        var admin = await app.NewUserAsync();
        var refused = await admin.Client.PostAsync("/api/webhooks", Json("""{"url":"https://example.com/h\u0000","eventTypes":["message.opened"]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("control characters", JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").GetProperty("url")[0].GetString());

        var created = await admin.Client.PostAsync("/api/webhooks",
            Json("""{"url":"https://example.com/h","eventTypes":["message.opened"],"description":"a\u0000b\r\nBcc: \u0007\u001b[31mc"}"""));
        var text = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, text);
        var id = JsonDocument.Parse(text).RootElement.GetProperty("webhook").GetProperty("id").GetGuid();
        Assert.Equal("ab Bcc: [31mc", app.WithDb(db => db.Webhooks.Single(w => w.Id == id).Description));

        var changed = await admin.Client.PutAsync($"/api/webhooks/{id}", Json("""{"url":"https://example.com/h","eventTypes":["message.opened"],"description":"x\u0000y"}"""));
        Assert.True(changed.IsSuccessStatusCode, await changed.Content.ReadAsStringAsync());
        Assert.Equal("xy", app.WithDb(db => db.Webhooks.Single(w => w.Id == id).Description));
        // Nothing left but control characters: no description.
        await admin.Client.PutAsync($"/api/webhooks/{id}", Json("""{"url":"https://example.com/h","eventTypes":["message.opened"],"description":"\u0000\r\n"}"""));
        Assert.Null(app.WithDb(db => db.Webhooks.Single(w => w.Id == id).Description));

        foreach (var url in new[] { @"https://example.com/h\u0000", @"https://example.com/a\r\nb", @"https://example.com/\u0007" })
        {
            var put = await admin.Client.PutAsync($"/api/webhooks/{id}", Json($$"""{"url":"{{url}}","eventTypes":["message.opened"]}"""));
            Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        }
        Assert.Equal("https://example.com/h", app.WithDb(db => db.Webhooks.Single(w => w.Id == id).Url));
    }

    [Fact]
    public async Task A_recipients_name_from_an_encoded_word_is_one_clean_line_and_an_address_with_a_control_character_is_refused()
    {
        var user = await app.NewUserAsync();
        // "A\0B" in base64 and in quoted-printable, and "Evil\r\nBcc: a@b.com": decoded by MimeKit as mail clients do.
        var reg = await user.RegisterAsync(new
        {
            from = user.Email, subject = "s", html = "<p>x</p>",
            to = new[] { "=?utf-8?b?QQBC?= <enc@x.com>", "=?utf-8?q?A=00B?= <q@x.com>", "=?utf-8?b?RXZpbA0KQmNjOiBhQGIuY29t?= <a@x.com>" },
            cc = new[] { "=?utf-8?b?G1szMW0HUmVk?= <esc@x.com>", "=?utf-8?b?AA0K?= <nothing@x.com>" },
        });
        var id = reg.GetProperty("id").GetGuid();
        var names = app.WithDb(db => db.Recipients.Where(r => r.TrackedMessageId == id).ToDictionary(r => r.Address, r => r.Name));
        Assert.Equal("AB", names["enc@x.com"]);
        Assert.Equal("AB", names["q@x.com"]);
        Assert.Equal("Evil Bcc: a@b.com", names["a@x.com"]);
        Assert.Equal("[31mRed", names["esc@x.com"]);
        Assert.Null(names["nothing@x.com"]);

        // .NET takes a control character in a quoted local part; SMTP does not.
        var bad = await user.Client.PostAsync("/api/messages",
            Json($$"""{"from":"{{user.Email}}","subject":"s","html":"<p>x</p>","to":["\"a\u0007b\"@x.com"]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        // Nor a right-to-left override or a zero-width space, which make an address read as another.
        foreach (var disguised in new[] { "\\u202emoc.rekcah@evil.test", "dana\\u200b@target.test", "dana@target\\u2066.test" })
        {
            var refused = await user.Client.PostAsync("/api/messages",
                Json($$"""{"from":"{{user.Email}}","subject":"s","html":"<p>x</p>","to":["{{disguised}}"]}"""));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("is not an email address", await refused.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Token_team_and_display_names_are_stored_as_one_clean_line()
    {
        var user = await app.NewUserAsync();
        var created = await user.Client.PostAsync("/api/tokens", Json("""{"name":"crm\r\n\u0007sync\u0000"}"""));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var tokenId = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        Assert.Equal("crm sync", app.WithDb(db => db.ApiTokens.Single(t => t.Id == tokenId).Name));

        // `et users add` and the first-run setup name a team and a person.
        using var scope = app.Services.CreateScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        var email = $"n{Guid.NewGuid():N}"[..12] + "@sender.test";
        var team = $"Encom\u0000 {Guid.NewGuid():N}\r\n";
        var made = await accounts.CreateUserWithTokenAsync(new NewUser(email, team, Plan.Team, TeamRole.Member, null, "Flynn\u0000\r\nBcc: x\u0007"), "cli\u0000");
        var stored = app.WithDb(db => db.Users.Include(u => u.Team).Single(u => u.Id == made.User.Id));
        Assert.Equal("Flynn Bcc: x", stored.DisplayName);
        Assert.Equal(team.Replace("\u0000", "", StringComparison.Ordinal).Trim(), stored.Team!.Name);
        Assert.Equal("cli", app.WithDb(db => db.ApiTokens.Single(t => t.UserId == made.User.Id).Name));
    }
}

public sealed class ControlCharactersOnSqlite(SqliteApp app) : ControlCharacterTests(app), IClassFixture<SqliteApp>;

public sealed class ControlCharactersOnPostgres(PostgresApp app) : ControlCharacterTests(app), IClassFixture<PostgresApp>;
