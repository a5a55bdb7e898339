using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Outlook;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Outbox;

/// <summary>
/// The Outlook add-in's Microsoft token, which the add-in gets silently for whoever opens Outlook, neither makes, changes,
/// lists nor deletes webhooks nor touches the delivery log, an admin's neither: a webhook made or pointed elsewhere with
/// it would send the team's recipients, subjects and answers to that URL long after the token ran out. Nor does it
/// change, remove or make the team's Salesforce connection.
/// </summary>
public abstract class WebhookAddinTests(OutlookApp app)
{
    [Fact]
    public async Task The_addins_microsoft_token_is_refused_even_for_an_admin_and_changes_nothing()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: "Correct-horse-battery-9");
        var made = await admin.Client.PostAsJsonAsync("/api/webhooks", new { url = "https://hooks.example.com/crm", eventTypes = new[] { "reply.received" } });
        Assert.Equal(HttpStatusCode.Created, made.StatusCode);
        var hook = JsonDocument.Parse(await made.Content.ReadAsStringAsync()).RootElement.GetProperty("webhook").GetProperty("id").GetGuid();
        var before = app.WithDb(db => db.Webhooks.AsNoTracking().Single(w => w.Id == hook));

        var pane = app.AsMicrosoftUser(admin.Email);
        // The token is good for the rest of the API.
        Assert.Equal(HttpStatusCode.OK, (await pane.GetAsync("/api/me")).StatusCode);

        var calls = new (string What, Func<Task<HttpResponseMessage>> Call)[]
        {
            ("list", () => pane.GetAsync("/api/webhooks")),
            ("make", () => pane.PostAsJsonAsync("/api/webhooks", new { url = "https://attacker.example.net/x", eventTypes = new[] { "message.sent", "reply.received" } })),
            ("point elsewhere", () => pane.PutAsJsonAsync($"/api/webhooks/{hook}", new { url = "https://attacker.example.net/x", eventTypes = new[] { "reply.received" } })),
            ("new secret", () => pane.PostAsync($"/api/webhooks/{hook}/secret", null)),
            ("delete", () => pane.DeleteAsync($"/api/webhooks/{hook}")),
            ("delivery log", () => pane.GetAsync("/api/outbox/deliveries")),
            ("replay one", () => pane.PostAsync("/api/outbox/deliveries/1/replay", null)),
            ("replay all", () => pane.PostAsync("/api/outbox/replay", null)),
        };
        foreach (var (what, call) in calls)
        {
            using var res = await call();
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.Forbidden, $"{what}: {(int)res.StatusCode} {text}");
            var problem = JsonDocument.Parse(text).RootElement;
            Assert.Equal(TeamApi.AddinRefusedReason, problem.GetProperty("reason").GetString());
            Assert.Contains("personal API token", problem.GetProperty("detail").GetString());
        }

        // Nothing changed: the one webhook, its address and its secret.
        var after = app.WithDb(db => db.Webhooks.AsNoTracking().Where(w => w.TeamId == admin.TeamId).ToList());
        var kept = Assert.Single(after);
        Assert.Equal((before.Id, before.Url, before.ProtectedSecret, before.EventTypes), (kept.Id, kept.Url, kept.ProtectedSecret, kept.EventTypes));
        // The admin's personal token is taken.
        Assert.Equal(1, (await admin.Client.GetJsonAsync("/api/webhooks")).GetArrayLength());
    }

    [Fact]
    public async Task The_addins_microsoft_token_does_not_change_the_salesforce_connection_even_for_an_admin()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: "Correct-horse-battery-9");
        var pane = app.AsMicrosoftUser(admin.Email);
        // Seeing the connection is fine (the add-in shows what is logged).
        Assert.Equal(HttpStatusCode.OK, (await pane.GetAsync("/api/salesforce")).StatusCode);
        var calls = new (string What, Func<Task<HttpResponseMessage>> Call)[]
        {
            ("change what is logged", () => pane.PutAsJsonAsync("/api/salesforce", new { logSends = false })),
            ("disconnect", () => pane.DeleteAsync("/api/salesforce")),
            ("connect as the JWT user", () => pane.PostAsJsonAsync("/api/salesforce/connect-jwt", new { })),
        };
        foreach (var (what, call) in calls)
        {
            using var res = await call();
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.Forbidden, $"{what}: {(int)res.StatusCode} {text}");
            var problem = JsonDocument.Parse(text).RootElement;
            Assert.Equal(TeamApi.AddinRefusedReason, problem.GetProperty("reason").GetString());
            Assert.Contains("personal API token", problem.GetProperty("detail").GetString());
        }
        // The admin's own sign-in is still an admin's: not connected, rather than refused.
        using var own = await admin.Client.DeleteAsync("/api/salesforce");
        Assert.Equal(HttpStatusCode.NotFound, own.StatusCode);
    }
}

public sealed class WebhookAddinOnSqlite(OutlookSqliteApp app) : WebhookAddinTests(app), IClassFixture<OutlookSqliteApp>;

public sealed class WebhookAddinOnPostgres(OutlookPostgresApp app) : WebhookAddinTests(app), IClassFixture<OutlookPostgresApp>;
