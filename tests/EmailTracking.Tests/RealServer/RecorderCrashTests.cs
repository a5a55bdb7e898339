using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace EmailTracking.Tests.RealServer;

/// <summary>
/// The recorder answers a hit only once the batch holding it is committed. Proof: hits pour in, the server is killed
/// with SIGKILL in the middle, and after a restart every hit that got its answer is in the database, none twice.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class RecorderCrashTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-crash-").FullName;

    [Fact]
    public async Task Every_answered_hit_survives_a_sigkill_and_none_is_recorded_twice()
    {
        var db = Path.Combine(dir, "et.db");
        var settings = new Dictionary<string, string> { ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={db}" };

        // The CLI creates the user on the same database and prints a token.
        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, settings, "users", "add", "--email", "crash@sender.test", "--team", "Crash", "--plan", "team");
        Assert.True(code == 0, stderr);
        var token = stdout.Trim();

        var server = await ServerProcess.StartAsync(dir, settings);
        var answered = new ConcurrentBag<string>();
        try
        {
            using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
            api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var reg = await api.PostAsJsonAsync("/api/messages", new
            {
                from = "crash@sender.test", subject = "crash", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
                to = Enumerable.Range(0, 20).Select(i => $"r{i}@encom.test").ToArray(), html = "<p>x</p>",
            });
            Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
            var pixels = JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement.GetProperty("copies").EnumerateArray()
                .Select(c => new Uri(c.GetProperty("pixelUrl").GetString()!).PathAndQuery).ToArray();

            using var hits = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri(server.BaseUrl), Timeout = TimeSpan.FromSeconds(30) };
            var counter = 0;
            using var stop = new CancellationTokenSource();
            async Task Worker()
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = Interlocked.Increment(ref counter);
                    var ua = $"Mozilla/5.0 (crash-test {n})";
                    var req = new HttpRequestMessage(HttpMethod.Get, pixels[n % pixels.Length]);
                    req.Headers.TryAddWithoutValidation("User-Agent", ua);
                    try
                    {
                        using var res = await hits.SendAsync(req);
                        var body = await res.Content.ReadAsByteArrayAsync();
                        if (res.StatusCode == HttpStatusCode.OK && body.Length > 0) answered.Add(ua);
                    }
                    catch (HttpRequestException) { return; } // the server is gone
                    catch (TaskCanceledException) { return; }
                }
            }
            var workers = Enumerable.Range(0, 16).Select(_ => Task.Run(Worker)).ToArray();
            // Let a good number of hits through, then kill the server while requests are in flight.
            // (Or whatever got through in two minutes, should the hits stop getting answers.)
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (answered.Count < 1500 && !server.HasExited && !workers.All(w => w.IsCompleted) && DateTime.UtcNow < deadline) await Task.Delay(20);
            server.Kill();
            stop.Cancel();
            await Task.WhenAll(workers);
            output.WriteLine($"sent {counter} hits, {answered.Count} answered before SIGKILL");
        }
        finally
        {
            await server.DisposeAsync();
        }

        // Restart on the same database: it comes back and works.
        await using (var again = await ServerProcess.StartAsync(dir, settings))
        {
            using var http = new HttpClient();
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(again.BaseUrl + "/healthz")).StatusCode);
        }

        var recorded = new Dictionary<string, int>();
        using (var conn = new SqliteConnection($"Data Source={db}"))
        {
            conn.Open();
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT UserAgent, COUNT(*) FROM Events WHERE UserAgent LIKE 'Mozilla/5.0 (crash-test %' GROUP BY UserAgent";
            using var r = cmd.ExecuteReader();
            while (r.Read()) recorded[r.GetString(0)] = r.GetInt32(1);
        }
        output.WriteLine($"{recorded.Count} hits recorded");
        Assert.True(answered.Count >= 1500, "the load did not get going");
        var lost = answered.Where(ua => !recorded.ContainsKey(ua)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} answered hits were not recorded, e.g. {string.Join(", ", lost.Take(5))}");
        Assert.DoesNotContain(recorded, kv => kv.Value > 1);
    }

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
