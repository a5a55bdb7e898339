using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using Npgsql;

namespace EmailTracking.Tests.RealServer;

/// <summary>
/// Two server processes on one PostgreSQL database, as behind a load balancer: both migrate at once, a message
/// registered on one is tracked by the other, every hit on either is recorded once, and a live feed on one instance
/// streams what the other recorded (LISTEN/NOTIFY), in id order, resumable on the other instance.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class TwoInstancesTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-two-").FullName;

    [Fact]
    public async Task Two_instances_share_tracking_and_the_live_feed()
    {
        var cs = TestPostgres.CreateDatabase();
        // The scanner below clicks its second link once the first reached B's stream through PostgreSQL: a wider burst
        // window than the default second keeps the two together on a busy two-core machine.
        var settings = new Dictionary<string, string>
        {
            ["Database__Provider"] = "Postgres", ["ConnectionStrings__Default"] = cs, ["Tracking__Classifier__ClickBurstWindow"] = "00:00:10",
        };
        var started = await Task.WhenAll(ServerProcess.StartAsync(dir, settings), ServerProcess.StartAsync(dir, settings));
        await using var a = started[0];
        await using var b = started[1];

        var (code, token, err) = await ServerProcess.RunCliAsync(dir, settings, "users", "add", "--email", "flynn@encom.test", "--team", "Encom", "--plan", "team");
        Assert.True(code == 0, err);
        token = token.Trim();

        using var apiA = new HttpClient { BaseAddress = new Uri(a.BaseUrl) };
        apiA.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var apiB = new HttpClient { BaseAddress = new Uri(b.BaseUrl), Timeout = Timeout.InfiniteTimeSpan };
        apiB.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var reg = await apiA.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Two instances", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = Enumerable.Range(0, 10).Select(i => $"r{i}@encom.test").ToArray(), html = "<p>hi</p>",
        });
        Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
        var pixels = JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement.GetProperty("copies").EnumerateArray()
            .Select(c => new Uri(c.GetProperty("pixelUrl").GetString()!).PathAndQuery).ToArray();

        // The feed is followed on B while hits land on both.
        using var feed = await apiB.GetAsync("/api/feed?after=0", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await feed.Content.ReadAsStreamAsync());

        using var hitsA = new HttpClient { BaseAddress = new Uri(a.BaseUrl) };
        using var hitsB = new HttpClient { BaseAddress = new Uri(b.BaseUrl) };
        foreach (var h in new[] { hitsA, hitsB }) h.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", AppFactory.MailClientAgent);
        var answered = new ConcurrentBag<int>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 200), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var client = i % 2 == 0 ? hitsA : hitsB;
            using var res = await client.GetAsync(pixels[i % pixels.Length], ct);
            if (res.StatusCode == HttpStatusCode.OK) answered.Add(i);
        });
        Assert.Equal(200, answered.Count);

        var ids = new List<long>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (ids.Count < 200)
        {
            var line = await reader.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException();
            if (line.StartsWith("id: ", StringComparison.Ordinal)) ids.Add(EventId(line));
        }
        Assert.Equal(ids.OrderBy(x => x), ids);
        Assert.Equal(200, ids.Distinct().Count());

        // One more hit, on A only: B's stream hears of it through PostgreSQL's NOTIFY, well before its 15 s
        // keep-alive would have made it look again.
        Assert.Equal(HttpStatusCode.OK, (await hitsA.GetAsync(pixels[0])).StatusCode);
        using (var quick = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
        {
            while (true)
            {
                var line = await reader.ReadLineAsync(quick.Token) ?? throw new EndOfStreamException();
                if (line.StartsWith("id: ", StringComparison.Ordinal)) { ids.Add(EventId(line)); break; }
            }
        }

        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT COUNT(*) FROM \"Events\"", conn);
        Assert.Equal(201L, (long)(await cmd.ExecuteScalarAsync())!);

        // Resuming on the other instance from the middle gives exactly the rest.
        using var apiA2 = new HttpClient { BaseAddress = new Uri(a.BaseUrl), Timeout = Timeout.InfiniteTimeSpan };
        apiA2.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var req = new HttpRequestMessage(HttpMethod.Get, "/api/feed");
        req.Headers.Add("Last-Event-ID", ids[99].ToString());
        using var resumed = await apiA2.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        using var reader2 = new StreamReader(await resumed.Content.ReadAsStreamAsync());
        var rest = new List<long>();
        while (rest.Count < 101)
        {
            var line = await reader2.ReadLineAsync(cts.Token) ?? throw new EndOfStreamException();
            if (line.StartsWith("id: ", StringComparison.Ordinal)) rest.Add(EventId(line));
        }
        Assert.Equal(ids.Skip(100), rest);
        Assert.Equal(201, ids.Count);

        // A click taken back on A (a scanner's two links within the burst window) reaches B's stream as a verdict change.
        var links = await apiA.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Two links", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "alan@encom.test" }, html = "<p><a href=\"https://encom.test/1\">1</a> <a href=\"https://encom.test/2\">2</a></p>",
        });
        var linkUrls = JsonDocument.Parse(await links.Content.ReadAsStringAsync()).RootElement.GetProperty("copies")[0].GetProperty("links")
            .EnumerateArray().Select(l => new Uri(l.GetProperty("trackedUrl").GetString()!).PathAndQuery).ToArray();
        using var scanner = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(a.BaseUrl) };
        scanner.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36");
        using (var quick = new CancellationTokenSource(TimeSpan.FromSeconds(15)))
        {
            // The first click reaches B's stream as a person's before the second gives it away.
            Assert.Equal(HttpStatusCode.Redirect, (await scanner.GetAsync(linkUrls[0])).StatusCode);
            while (!(await reader.ReadLineAsync(quick.Token) ?? throw new EndOfStreamException()).Contains("\"kind\":\"click\"", StringComparison.Ordinal))
            {
            }
            Assert.Equal(HttpStatusCode.Redirect, (await scanner.GetAsync(linkUrls[1])).StatusCode);
            while ((await reader.ReadLineAsync(quick.Token) ?? throw new EndOfStreamException()) != "event: verdict")
            {
            }
            var data = (await reader.ReadLineAsync(quick.Token))!;
            Assert.Contains("\"verdict\":\"scanner\"", data);
        }
    }

    /// <summary>The event id of a feed line <c>id: E:C</c>.</summary>
    static long EventId(string line) => long.Parse(line[4..].Split(':')[0], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Scanners click in the first seconds after a mail is sent, which is when another instance's cache of the click's
    /// target could still hold the time the message was registered. Marking it sent on one instance must reach the
    /// other's cache at once (NOTIFY), or that instance calls the scanner a person.
    /// </summary>
    [Fact]
    public async Task Marking_a_message_sent_on_one_instance_reaches_the_other_instances_cached_targets()
    {
        var cs = TestPostgres.CreateDatabase();
        var settings = new Dictionary<string, string> { ["Database__Provider"] = "Postgres", ["ConnectionStrings__Default"] = cs };
        var started = await Task.WhenAll(ServerProcess.StartAsync(dir, settings), ServerProcess.StartAsync(dir, settings));
        await using var a = started[0];
        await using var b = started[1];
        var (code, token, err) = await ServerProcess.RunCliAsync(dir, settings, "users", "add", "--email", "alan@encom.test", "--team", "Encom", "--plan", "team");
        Assert.True(code == 0, err);
        using var apiA = new HttpClient { BaseAddress = new Uri(a.BaseUrl) };
        apiA.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.Trim());

        // Registered an hour ago (a draft), not sent yet.
        var reg = await apiA.PostAsJsonAsync("/api/messages", new
        {
            from = "alan@encom.test", subject = "Draft", perRecipient = true, to = new[] { "sam@encom.test" },
            html = "<p>See <a href=\"https://encom.test/deck\">the deck</a></p>",
        });
        Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
        var created = JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement;
        var id = created.GetProperty("id").GetGuid();
        var click = new Uri(created.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!).PathAndQuery;
        await using (var conn = new NpgsqlConnection(cs))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("UPDATE \"Messages\" SET \"CreatedAt\" = now() - interval '1 hour' WHERE \"Id\" = @id", conn);
            cmd.Parameters.AddWithValue("id", id);
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }

        // B looks the link up (and caches it) while the message counts from its registration: a person's click.
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(b.BaseUrl) };
        browser.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36");
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync(click)).StatusCode);

        // A records the send; a click on B a moment later is within seconds of sending: a scanner.
        Assert.Equal(HttpStatusCode.NoContent, (await apiA.PostAsJsonAsync($"/api/messages/{id}/sent", new { })).StatusCode);
        // B hears of the send through NOTIFY and drops its cached copy; 3 s leaves it time on a busy machine and stays
        // well inside the 10 s after sending in which a click is a scanner's.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync(click)).StatusCode);

        await using var db = new NpgsqlConnection(cs);
        await db.OpenAsync();
        await using var verdicts = new NpgsqlCommand("SELECT \"Verdict\" FROM \"Events\" WHERE \"TrackedMessageId\" = @id AND \"Kind\" = @kind ORDER BY \"Id\"", db);
        verdicts.Parameters.AddWithValue("id", id);
        verdicts.Parameters.AddWithValue("kind", (int)EmailTracking.Data.EventKind.Click);
        var seen = new List<EmailTracking.Data.Verdict>();
        await using (var r = await verdicts.ExecuteReaderAsync())
        {
            while (await r.ReadAsync()) seen.Add((EmailTracking.Data.Verdict)r.GetInt32(0));
        }
        Assert.Equal([EmailTracking.Data.Verdict.Human, EmailTracking.Data.Verdict.Scanner], seen);
    }

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
