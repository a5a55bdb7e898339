using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Xunit.Abstractions;

namespace EmailTracking.Tests.RealServer;

/// <summary>
/// At least once, with a real crash: the receiver has processed a delivery when the server is killed with SIGKILL,
/// before it hears the answer. After a restart the delivery goes again with the same idempotency key, and the
/// receiver drops it as a duplicate.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class OutboxCrashTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-outboxcrash-").FullName;

    [Fact]
    public async Task A_server_killed_mid_delivery_delivers_again_after_restart_and_the_receiver_drops_the_duplicate()
    {
        var db = Path.Combine(dir, "et.db");
        var settings = new Dictionary<string, string>
        {
            ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={db}",
            ["Outbox__Settle"] = "00:00:00", ["Outbox__PollInterval"] = "00:00:00.200", ["Outbox__Lease"] = "00:00:03",
            ["Webhooks__AllowHttp"] = "true", ["Webhooks__AllowPrivateTargets"] = "true",
        };
        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, settings, "users", "add", "--email", "boss@sender.test", "--team", "Hooks",
            "--plan", "team", "--role", "admin");
        Assert.True(code == 0, stderr);
        var token = stdout.Trim();
        await using var receiver = await WebhookReceiver.StartAsync();

        var server = await ServerProcess.StartAsync(dir, settings);
        string key;
        try
        {
            using var api = server.Api(token);
            var hook = await api.PostAsJsonAsync("/api/webhooks", new { url = receiver.Url, eventTypes = new[] { "message.sent" } });
            var created = JsonDocument.Parse(await hook.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.Created, hook.StatusCode);
            receiver.Secret = created.GetProperty("secret").GetString();
            var killed = new TaskCompletionSource();
            receiver.AfterProcessing = () =>
            {
                server.Kill();
                killed.TrySetResult();
            };
            var reg = await api.PostAsJsonAsync("/api/messages", new
            {
                from = "boss@sender.test", subject = "Crash", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>",
            });
            Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
            await killed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(server.HasExited);
            key = Assert.Single(receiver.Processed.Keys);
        }
        finally
        {
            output.WriteLine(server.Output);
            await server.DisposeAsync();
        }
        // The server never heard the answer: the delivery is still pending.
        Assert.Equal(0L, Scalar(db, "SELECT State FROM OutboxDeliveries"));

        var again = await ServerProcess.StartAsync(dir, settings);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Scalar(db, "SELECT State FROM OutboxDeliveries") != 1)
            {
                Assert.True(DateTime.UtcNow < deadline, "the restarted server did not deliver again\n" + again.Output);
                await Task.Delay(200);
            }
        }
        finally
        {
            await again.DisposeAsync();
        }
        Assert.Equal(1, receiver.Duplicates);
        Assert.Equal([key], receiver.Processed.Keys);
        Assert.Equal(2, receiver.Requests.Count(r => r.Key == key));
        Assert.All(receiver.Requests, r => Assert.True(r.SignatureValid));
        Assert.Equal(1L, Scalar(db, "SELECT COUNT(*) FROM OutboxDeliveries"));
    }

    static long Scalar(string db, string sql) => Convert.ToInt64(ServerProcess.SqliteScalar(db, sql) ?? -1L, System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
