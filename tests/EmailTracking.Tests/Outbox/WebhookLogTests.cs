using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EmailTracking.Tests.Outbox;

/// <summary>The outbox's server with its log kept, the HTTP client's categories at Information as in production.</summary>
public sealed class WebhookLogApp() : OutboxApp(DatabaseProvider.Sqlite)
{
    public LogCollector Log { get; } = new();

    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("Logging:LogLevel:System.Net.Http.HttpClient", "Information");
        builder.ConfigureLogging(l => l.AddProvider(Log));
    }
}

/// <summary>
/// A webhook's URL is often its receiver's only secret (a token in the path): it is shown to the team's admins, never
/// written to the server's log.
/// </summary>
public sealed class WebhookLogTests(WebhookLogApp app) : IClassFixture<WebhookLogApp>
{
    [Fact]
    public async Task A_webhooks_url_is_not_written_to_the_server_log_when_it_is_called()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        const string secretPath = "T0KEN-in-the-path-4f1c9a";
        var res = await admin.Client.PostAsJsonAsync("/api/webhooks", new { url = $"{receiver.Url}/{secretPath}", eventTypes = OutboxEventTypes.All });
        Assert.True(res.StatusCode == HttpStatusCode.Created, await res.Content.ReadAsStringAsync());
        var hook = (await res.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("webhook").GetProperty("id").GetGuid();

        using (var scope = app.Services.CreateScope())
        {
            var target = scope.ServiceProvider.GetRequiredKeyedService<IDeliveryTarget>(WebhookTarget.TargetKind);
            var now = DateTimeOffset.UtcNow;
            var payload = new OutboxPayload(OutboxEventTypes.MessageSent, now, admin.TeamId, admin.Id, admin.Email, Guid.NewGuid(), "Proposal", now,
                "sam@encom.test", ["sam@encom.test"], null, null, null, null, "human", null, new OutboxSummary(0, 0, 0, false));
            // The receiver has no such path (404): what matters is that the request was made.
            var result = await target.DeliverAsync(hook, new OutboxMessage(1, $"log-{Guid.NewGuid():N}", 1, payload), CancellationToken.None);
            Assert.Equal((DeliveryOutcome.Retry, 404), (result.Outcome, result.StatusCode));
        }

        Assert.DoesNotContain(app.Log.Entries, e => e.Message.Contains(secretPath, StringComparison.Ordinal));
        Assert.DoesNotContain(app.Log.Entries, e => e.Category.StartsWith("System.Net.Http.HttpClient." + WebhookTarget.HttpClientName, StringComparison.Ordinal));
    }
}
