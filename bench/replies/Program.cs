using System.Diagnostics;
using System.Globalization;
using EmailTracking.Data;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Replies;
using EmailTracking.Server.Replies.Classification;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MimeKit;

// bench/replies: how fast inbound mail is classified and matched against a million stored Message-IDs, as a ratio
// to bare MimeKit parsing of the same messages measured in the same run. See README.md beside this file.

var ids = ArgInt("--ids", 1_000_000);
var rounds = ArgInt("--rounds", 10);
var generated = ArgInt("--replies", 2000);
// Each measurement goes through the corpus this many times: a single pass of bare parsing lasts only tens of
// milliseconds, too short to measure on a busy machine.
var repeat = ArgInt("--repeat", 10);

var shared = FindShared();
var corpus = new List<(string Name, byte[] Bytes)>();
foreach (var dir in new[] { "bsd", "not" })
{
    foreach (var file in Directory.GetFiles(Path.Combine(shared, "sisimai", dir), "*.eml").Order(StringComparer.Ordinal))
    {
        corpus.Add((Path.GetFileName(file), File.ReadAllBytes(file)));
    }
}
var sisimaiCount = corpus.Count;

// The originals the bounces quote become stored ids too, so that bounces match as they would in production.
var originals = File.ReadLines(Path.Combine(shared, "sisimai", "recipients.tsv")).Skip(1)
    .Select(l => l.Split('\t')).Where(c => c.Length > 3)
    .SelectMany(c => c).Where(v => v.Contains('@') && !v.Contains(' ') && v.Length > 10 && v.Length < 250 && !v.StartsWith('<') && v.Contains('.'))
    .Distinct().ToList();

var root = Directory.CreateTempSubdirectory("et-bench-replies-").FullName;
try
{
    var connectionString = $"Data Source={Path.Combine(root, "bench.db")}";
    var services = new ServiceCollection();
    services.AddLogging(b => b.SetMinimumLevel(Environment.GetEnvironmentVariable("BENCH_SQL") == "1" ? LogLevel.Information : LogLevel.Warning).AddSimpleConsole());
    services.AddDbContext<AppDbContext>(o => DatabaseSetup.Configure(o, DatabaseProvider.Sqlite, DatabaseSetup.Prepare(DatabaseProvider.Sqlite, connectionString), SqliteDurability.Normal));
    services.AddSingleton(TimeProvider.System);
    services.AddSingleton(new InboundClassifier());
    services.AddSingleton<FeedNotifier>();
    services.AddScoped<InboundPipeline>();
    await using var provider = services.BuildServiceProvider();

    Console.WriteLine($"bench/replies: {sisimaiCount} sisimai messages + {generated} generated replies, {ids:N0} stored Message-IDs, {rounds} rounds of {repeat} passes");
    var sw = Stopwatch.StartNew();
    var (userId, stored) = await SeedAsync(provider, connectionString, ids, originals);
    Console.WriteLine($"seeded {ids:N0} copies in {sw.Elapsed.TotalSeconds:0.0} s");

    var rng = new Random(42);
    for (var i = 0; i < generated; i++) corpus.Add(($"generated-{i}", Reply(i, rng, stored)));
    // The million ids were needed only to write replies to them: a server does not hold them in memory, so neither
    // does the bench while it measures (every full collection would mark them).
    stored.Clear();
    stored.TrimExcess();
    GC.Collect();

    // Warm up both paths (JIT, caches, the database's pages), then alternate rounds; each path keeps its best.
    // Tiered JIT recompiles hot code (the classifier's ~70 regular expressions among it) over the first rounds.
    for (var w = 0; w < 8; w++)
    {
        await PipelineRoundAsync(provider, userId, corpus, 1);
        BareRound(corpus, 1);
        ClassifyRound(provider.GetRequiredService<InboundClassifier>(), corpus, 1);
    }
    // Each round measures both, back to back, and yields a ratio; the median ratio is reported, which holds up when
    // the machine is busy with something else for part of the run (a best-of would pair lucky and unlucky rounds).
    var ratios = new List<double>();
    var bares = new List<double>();
    var classifies = new List<double>();
    var classifierForRounds = provider.GetRequiredService<InboundClassifier>();
    var pipelines = new List<double>();
    var matched = 0;
    var kinds = new Dictionary<string, int>();
    var matchTimes = new List<double>();
    var perMessage = corpus.Count * (double)repeat;
    // What each path allocates per message and how long the collector paused it: the pipeline's cost is as much the
    // garbage it leaves as the work it does.
    (long Bytes, TimeSpan Pause) Gc() => (GC.GetTotalAllocatedBytes(precise: true), GC.GetTotalPauseDuration());
    string Cost((long Bytes, TimeSpan Pause) before, double rate)
    {
        var (bytes, pause) = Gc();
        var seconds = perMessage / rate;
        return $"{(bytes - before.Bytes) / perMessage / 1024:0.0} KiB/msg, GC {(pause - before.Pause).TotalSeconds / seconds:P0}";
    }
    for (var r = 0; r < rounds; r++)
    {
        var gc = Gc();
        var bare = BareRound(corpus, repeat);
        var bareCost = Cost(gc, bare);
        gc = Gc();
        classifies.Add(ClassifyRound(classifierForRounds, corpus, repeat));
        var classifyCost = Cost(gc, classifies[^1]);
        gc = Gc();
        var (rate, m, k, matchMicros) = await PipelineRoundAsync(provider, userId, corpus, repeat);
        var pipelineCost = Cost(gc, rate);
        bares.Add(bare);
        pipelines.Add(rate);
        ratios.Add(rate / bare);
        matched = m;
        kinds = k;
        matchTimes.Add(matchMicros);
        Console.WriteLine($"round {r + 1}: bare {bare:N0}/s ({bareCost}), classify {classifies[^1]:N0}/s ({classifyCost}), classify+match {rate:N0}/s ({pipelineCost}; match {matchMicros:0.0} µs/msg), ratio {rate / bare:0.00}");
    }
    static double Median(List<double> v) { var o = v.Order().ToList(); return o.Count % 2 == 1 ? o[o.Count / 2] : (o[o.Count / 2 - 1] + o[o.Count / 2]) / 2; }
    var bestBare = Median(bares);
    var bestPipeline = Median(pipelines);
    var classifyOnly = Median(classifies);
    var ratio = Median(ratios);
    Console.WriteLine();
    Console.WriteLine("| measure | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| messages per round | {corpus.Count:N0} ({sisimaiCount} sisimai, {generated:N0} generated replies) |");
    Console.WriteLine($"| stored Message-IDs | {ids:N0} |");
    Console.WriteLine($"| bare MimeKit parsing (median of rounds) | {bestBare:N0} msg/s |");
    Console.WriteLine($"| parse + classify + match (median of rounds) | {bestPipeline:N0} msg/s |");
    Console.WriteLine($"| parse + classify alone (median of rounds) | {classifyOnly:N0} msg/s |");
    Console.WriteLine($"| ratio, median of rounds (target ≥ 0.5) | {ratio:0.00} {(ratio >= 0.5 ? "PASS" : "FAIL")} |");
    Console.WriteLine($"| matched to a stored id | {matched:N0} of {corpus.Count:N0} |");
    // Where a message's time goes: parsing, classifying (people's replies and machine reports apart: a report is read
    // through), and the lookup of the batch's Message-IDs.
    var replies = corpus.Where(c => c.Name.StartsWith("generated-", StringComparison.Ordinal)).ToList();
    var reports = corpus.Where(c => !c.Name.StartsWith("generated-", StringComparison.Ordinal)).ToList();
    static double Micros(double rate) => 1e6 / rate;
    var parseReplies = Micros(BareRound(replies, repeat));
    var classifyReplies = Micros(ClassifyRound(classifierForRounds, replies, repeat)) - parseReplies;
    var parseReports = Micros(BareRound(reports, repeat));
    var classifyReports = Micros(ClassifyRound(classifierForRounds, reports, repeat)) - parseReports;
    Console.WriteLine($"| per message: parsing (median) | {Micros(bestBare):0.0} µs (generated replies {parseReplies:0.0}, sisimai {parseReports:0.0}) |");
    Console.WriteLine($"| per message: classification (median) | {Micros(classifyOnly) - Micros(bestBare):0.0} µs (generated replies {classifyReplies:0.0}, sisimai {classifyReports:0.0}) |");
    Console.WriteLine($"| per message: Message-ID lookup (median) | {Median(matchTimes):0.0} µs |");
    Console.WriteLine($"| kinds | {string.Join(", ", kinds.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}"))} |");
    return ratio >= 0.5 ? 0 : 3;
}
finally
{
    SqliteConnection.ClearAllPools();
    if (Environment.GetEnvironmentVariable("BENCH_KEEP") == "1") Console.WriteLine("kept " + root);
    else try { Directory.Delete(root, true); } catch (IOException) { }
}

static double BareRound(List<(string Name, byte[] Bytes)> corpus, int repeat)
{
    var sw = Stopwatch.StartNew();
    var n = 0;
    for (var k = 0; k < repeat; k++)
    foreach (var (_, bytes) in corpus)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var message = MimeMessage.Load(stream);
        if (message.Headers.Count >= 0) n++;
    }
    return n / sw.Elapsed.TotalSeconds;
}

static double ClassifyRound(InboundClassifier classifier, List<(string Name, byte[] Bytes)> corpus, int repeat)
{
    var sw = Stopwatch.StartNew();
    for (var k = 0; k < repeat; k++)
    foreach (var (_, bytes) in corpus)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        using var message = MimeMessage.Load(stream);
        classifier.Classify(message);
    }
    return corpus.Count * repeat / sw.Elapsed.TotalSeconds;
}

static async Task<(double Rate, int Matched, Dictionary<string, int> Kinds, double MatchMicros)> PipelineRoundAsync(IServiceProvider provider, Guid userId, List<(string Name, byte[] Bytes)> corpus, int repeat)
{
    await using var scope = provider.CreateAsyncScope();
    var pipeline = scope.ServiceProvider.GetRequiredService<InboundPipeline>();
    // As a watch does for a round: one connection for all the lookups.
    await scope.ServiceProvider.GetRequiredService<AppDbContext>().Database.OpenConnectionAsync();
    var kinds = new Dictionary<string, int>();
    var matched = 0;
    var matchTime = TimeSpan.Zero;
    var sw = Stopwatch.StartNew();
    // In batches of parsed messages, as an IMAP watch reads and analyses them.
    for (var k = 0; k < repeat; k++)
    foreach (var batch in corpus.Chunk(EmailTracking.Server.Mailboxes.ImapWatch.BatchCount))
    {
        var messages = new List<(MimeMessage, string?)>(batch.Length);
        var classified = new List<InboundClassification>(batch.Length);
        foreach (var (_, bytes) in batch)
        {
            using var stream = new MemoryStream(bytes, writable: false);
            var message = MimeMessage.Load(stream);
            messages.Add((message, null));
            // As the watch does: classified as soon as it is parsed, then the batch's Message-IDs looked up at once.
            classified.Add(pipeline.Classify(message));
        }
        var started = Stopwatch.GetTimestamp();
        var analyses = await pipeline.AnalyzeManyAsync(userId, messages, CancellationToken.None, classified);
        matchTime += Stopwatch.GetElapsedTime(started);
        foreach (var (classification, match) in analyses)
        {
            if (match is not null) matched++;
            var kind = classification.Kind.ToString();
            kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
        }
        foreach (var (message, _) in messages) message.Dispose();
    }
    return (corpus.Count * repeat / sw.Elapsed.TotalSeconds, matched / repeat, kinds.ToDictionary(k => k.Key, k => k.Value / repeat),
        matchTime.TotalMicroseconds / (corpus.Count * repeat));
}

static async Task<(Guid UserId, List<string> Stored)> SeedAsync(IServiceProvider provider, string connectionString, int count, List<string> originals)
{
    var team = new Team { Name = "bench", NormalizedName = Team.Normalize("bench"), Plan = Plan.Team, CreatedAt = DateTimeOffset.UtcNow };
    var user = new User { Id = Guid.NewGuid(), TeamId = team.Id, UserName = "bench@sender.test", Email = "bench@sender.test", CreatedAt = DateTimeOffset.UtcNow };
    await using (var scope = provider.CreateAsyncScope())
    {
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.MigrateAsync();
        db.Teams.Add(team);
        db.Users.Add(user);
        await db.SaveChangesAsync();
    }
    // A million copies through EF would take minutes: one prepared INSERT per table in one transaction instead,
    // with the same value encodings as the model (16-byte Guids, DateTimeOffset as binary ticks).
    var stored = new List<string>(count);
    await using var connection = new SqliteConnection(connectionString);
    await connection.OpenAsync();
    await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync();
    var msg = connection.CreateCommand();
    msg.Transaction = tx;
    msg.CommandText = "INSERT INTO Messages (Id, TeamId, UserId, Source, FromAddress, Subject, PerRecipient, CreatedAt, SentAt) VALUES ($id, $team, $user, 0, 'bench@sender.test', 'Proposal', 1, $at, $at)";
    var mId = msg.Parameters.Add("$id", SqliteType.Blob);
    msg.Parameters.AddWithValue("$team", team.Id.ToByteArray());
    msg.Parameters.AddWithValue("$user", user.Id.ToByteArray());
    msg.Parameters.AddWithValue("$at", new Microsoft.EntityFrameworkCore.Storage.ValueConversion.DateTimeOffsetToBinaryConverter()
        .ConvertToProvider(DateTimeOffset.UtcNow.AddDays(-1))!);
    var copy = connection.CreateCommand();
    copy.Transaction = tx;
    copy.CommandText = "INSERT INTO Copies (Id, TrackedMessageId, UserId, TeamId, MessageIdHeader, SentMessageIdHeader, PixelToken) VALUES ($id, $msg, $user, $team, $mid, $kept, $tok)";
    var cId = copy.Parameters.Add("$id", SqliteType.Blob);
    var cMsg = copy.Parameters.Add("$msg", SqliteType.Blob);
    var cMid = copy.Parameters.Add("$mid", SqliteType.Text);
    var cKept = copy.Parameters.Add("$kept", SqliteType.Text);
    var cTok = copy.Parameters.Add("$tok", SqliteType.Text);
    copy.Parameters.AddWithValue("$team", team.Id.ToByteArray());
    copy.Parameters.AddWithValue("$user", user.Id.ToByteArray());
    msg.Prepare();
    copy.Prepare();
    byte[] current = [];
    for (var i = 0; i < count; i++)
    {
        if (i % 10 == 0)
        {
            current = Guid.NewGuid().ToByteArray();
            mId.Value = current;
            await msg.ExecuteNonQueryAsync();
        }
        // Every copy has one of our Message-IDs. The originals the sisimai bounces quote were made by other servers:
        // they are stored as ids a provider kept instead of ours (as Gmail's or Outlook's are, for mail sent from
        // their clients), which is how such an id gets into the database.
        var header = OurMessageIds.New("t.sender.test");
        var kept = i < originals.Count ? originals[i] : null;
        stored.Add(kept ?? header);
        cId.Value = Guid.NewGuid().ToByteArray();
        cMsg.Value = current;
        cMid.Value = header;
        cKept.Value = (object?)kept ?? DBNull.Value;
        cTok.Value = Guid.NewGuid().ToString("N");
        await copy.ExecuteNonQueryAsync();
    }
    await tx.CommitAsync();
    return (user.Id, stored);
}

static byte[] Reply(int i, Random rng, List<string> stored)
{
    string[] bodies =
    [
        "Thanks, that works for us. Let's talk on Tuesday.",
        "Danke für das Angebot, wir melden uns nächste Woche.",
        "Merci, je transmets à mon collègue qui gère les achats.",
        "Gracias, ¿podemos hablar el jueves?",
        "Obrigado! Vou analisar e volto a falar consigo.",
        "Grazie, ne parlo con il team e vi faccio sapere.",
        "Bedankt, ik ben volgende week op vakantie maar mijn collega neemt contact op.",
    ];
    var m = new MimeMessage();
    m.From.Add(new MailboxAddress("Person " + i, $"person{i}@customer{i % 50}.test"));
    m.To.Add(new MailboxAddress("Bench", "bench@sender.test"));
    m.Subject = "Re: Proposal";
    m.Date = DateTimeOffset.UtcNow;
    m.MessageId = ClientMessageId(i, rng);
    // Most answer a stored message (directly or deep in a thread); some answer mail that is not ours.
    var ours = stored[rng.Next(stored.Count)];
    switch (i % 5)
    {
        case 0:
            m.InReplyTo = ClientMessageId(i + 1, rng);
            break;
        case 1:
            m.InReplyTo = ClientMessageId(i + 2, rng);
            for (var k = 0; k < 8; k++) m.References.Add(ClientMessageId(i + k, rng));
            m.References.Insert(0, ours);
            break;
        default:
            m.InReplyTo = ours;
            m.References.Add(ours);
            break;
    }
    var text = bodies[i % bodies.Length] + "\n\nOn Mon, 2 Nov 2026, Bench <bench@sender.test> wrote:\n> Here is the proposal.\n> Best regards\n";
    var builder = new BodyBuilder { TextBody = text, HtmlBody = "<div>" + System.Net.WebUtility.HtmlEncode(text).Replace("\n", "<br>") + "</div>" };
    m.Body = builder.ToMessageBody();
    using var stream = new MemoryStream();
    m.WriteTo(stream);
    return stream.ToArray();
}

// The Message-IDs the recipients' side makes, in the shapes of the clients and servers that make most of them.
static string ClientMessageId(int i, Random rng)
{
    string Chars(string alphabet, int n) => new([.. Enumerable.Range(0, n).Select(_ => alphabet[rng.Next(alphabet.Length)])]);
    const string Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const string Base64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_=-";
    return (i % 5) switch
    {
        0 => $"CA{Chars(Base64, 46)}@mail.gmail.com",
        1 => $"{Chars(Upper, 4)}PR{rng.Next(10, 20)}MB{Chars(Upper, 36)}@{Chars(Upper, 8)}.namprd{rng.Next(10, 20)}.prod.outlook.com",
        2 => $"{Guid.NewGuid().ToString().ToUpperInvariant()}@customer{i % 50}.test",
        3 => $"{Guid.NewGuid()}@customer{i % 50}.test",
        _ => $"{DateTime.UtcNow:yyyyMMddHHmmss}.{Chars(Upper, 10)}@mx.customer{i % 50}.test",
    };
}

static string FindShared()
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
    {
        var sibling = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
        if (Directory.Exists(sibling)) return sibling;
    }
    throw new DirectoryNotFoundException("No ../shared/data above the current directory: run from the repository (shared/ beside it).");
}

int ArgInt(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}
