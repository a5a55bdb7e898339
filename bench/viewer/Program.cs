using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Bench.Viewer;
using Microsoft.Playwright;

// bench/viewer: how soon the recipient viewer draws page 1 of a 100-page PDF over a throttled connection, against the
// time the whole file takes to download over the same throttle, in the same run (issue 4: under 20 %).
// See README.md beside this file.

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

var rounds = ArgInt("--rounds", 5);
var pages = ArgInt("--pages", 100);
var downKbps = ArgInt("--down-kbps", 1600);
var upKbps = ArgInt("--up-kbps", 750);
var latencyMs = ArgInt("--latency-ms", 150);
var keep = args.Contains("--keep");
var verbose = args.Contains("--verbose");
var deckOnly = ArgString("--deck-only"); // write the generated PDF to this path and stop (to look at it)
var givenPdf = ArgString("--pdf"); // measure this PDF instead of the generated deck (e.g. a post-processed copy of it)
const double Target = 0.20;

var repo = FindRepo();
var work = Directory.CreateTempSubdirectory("et-bench-viewer-").FullName;
Process? server = null;
var cleaned = 0;
void Cleanup()
{
    if (Interlocked.Exchange(ref cleaned, 1) == 1) return;
    try
    {
        if (server is { HasExited: false })
        {
            server.Kill(entireProcessTree: true);
            server.WaitForExit(10_000);
        }
    }
    catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
    if (keep) Console.Error.WriteLine($"kept {work}");
    else
    {
        try { Directory.Delete(work, true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"could not remove {work}: {e.Message}"); }
    }
}
// Ctrl+C or a kill: stop the server and remove the folder before going.
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; Cleanup(); Environment.Exit(130); });
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; Cleanup(); Environment.Exit(143); });

try
{
    return await RunAsync();
}
catch (Exception e)
{
    Console.Error.WriteLine($"bench/viewer failed: {e.Message}");
    if (verbose) Console.Error.WriteLine(e);
    var log = Path.Combine(work, "server.log");
    if (File.Exists(log)) Console.Error.WriteLine("--- server log (tail) ---\n" + string.Join('\n', File.ReadLines(log).TakeLast(30)));
    return 1;
}
finally
{
    Cleanup();
}

async Task<int> RunAsync()
{
    // ---- the document -------------------------------------------------------------------------------------------
    var sw = Stopwatch.StartNew();
    var pdfPath = givenPdf is null ? await Deck.MakePdfAsync(work, pages, TimeSpan.FromMinutes(5)) : Path.GetFullPath(givenPdf);
    var pdfBytes = new FileInfo(pdfPath).Length;
    var head = File.ReadAllBytes(pdfPath).AsSpan(0, (int)Math.Min(1024, pdfBytes)).ToArray();
    var linearized = System.Text.Encoding.Latin1.GetString(head).Contains("/Linearized", StringComparison.Ordinal);
    Console.WriteLine($"bench/viewer: {(givenPdf is null ? $"{pages}-page PDF made by LibreOffice in {sw.Elapsed.TotalSeconds:0.0} s" : givenPdf)}: {pdfBytes:N0} bytes, " +
                      $"{(linearized ? "linearized" : "not linearized")}");
    if (deckOnly is not null)
    {
        File.Copy(pdfPath, deckOnly, overwrite: true);
        Console.WriteLine($"written to {deckOnly}");
        return 0;
    }

    // ---- the server, a team-plan user, the upload, a link ---------------------------------------------------------
    var serverDll = Built("EmailTracking.Server", "EmailTracking.Server.dll");
    var cliDll = Built("EmailTracking.Cli", "et.dll");
    var port = FreePort();
    var baseUrl = $"http://127.0.0.1:{port}";
    var settings = new Dictionary<string, string>
    {
        ["Database__Provider"] = "Sqlite",
        ["ConnectionStrings__Default"] = $"Data Source={Path.Combine(work, "bench.db")}",
        ["Content__StorePath"] = Path.Combine(work, "content"),
        ["Tracking__PublicBaseUrl"] = baseUrl,
        ["Urls"] = baseUrl,
        ["ASPNETCORE_ENVIRONMENT"] = "Production",
        ["Logging__LogLevel__Default"] = "Warning",
        ["Logging__LogLevel__Microsoft.EntityFrameworkCore.Database.Command"] = "Critical",
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        ["DOTNET_NOLOGO"] = "1",
    };
    var appleRelay = Path.Combine(repo, "..", "shared", "data", "apple-relay");
    if (Directory.Exists(appleRelay)) settings["Tracking__AppleRelay__Directory"] = Path.GetFullPath(appleRelay);

    var serverLog = new StreamWriter(Path.Combine(work, "server.log")) { AutoFlush = true };
    var psi = new ProcessStartInfo("dotnet", [serverDll])
    { WorkingDirectory = work, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var (k, v) in settings) psi.Environment[k] = v;
    server = Process.Start(psi) ?? throw new InvalidOperationException("the server did not start");
    server.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (serverLog) serverLog.WriteLine(e.Data); };
    server.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (serverLog) serverLog.WriteLine(e.Data); };
    server.BeginOutputReadLine();
    server.BeginErrorReadLine();

    using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromMinutes(5) };
    for (var i = 0; ; i++)
    {
        if (server.HasExited) throw new InvalidOperationException($"the server exited ({server.ExitCode})");
        try
        {
            if ((await http.GetAsync("/healthz")).IsSuccessStatusCode) break;
        }
        catch (HttpRequestException) { }
        if (i > 600) throw new TimeoutException("the server was not healthy after 60 s");
        await Task.Delay(100);
    }

    var token = await CreateUserAsync(cliDll, settings);
    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    using var form = new MultipartFormDataContent();
    var file = new ByteArrayContent(await File.ReadAllBytesAsync(pdfPath));
    file.Headers.ContentType = new MediaTypeHeaderValue("application/pdf");
    form.Add(file, "file", "Proposal.pdf");
    var upload = await http.PostAsync("/api/content", form);
    var uploaded = await upload.Content.ReadAsStringAsync();
    if (upload.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"upload answered {(int)upload.StatusCode}: {uploaded}");
    using var content = JsonDocument.Parse(uploaded);
    var contentId = content.RootElement.GetProperty("id").GetString();
    var pageCount = content.RootElement.GetProperty("pages").GetInt32();
    if (pageCount != pages) throw new InvalidOperationException($"the server counts {pageCount} pages in the deck, not {pages}: the layout overflowed");
    var linkResponse = await http.PostAsync($"/api/content/{contentId}/links", null);
    var linkJson = await linkResponse.Content.ReadAsStringAsync();
    if (linkResponse.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"creating a link answered {(int)linkResponse.StatusCode}: {linkJson}");
    var linkUrl = JsonDocument.Parse(linkJson).RootElement.GetProperty("url").GetString()!;
    var linkPath = new Uri(linkUrl).AbsolutePath;
    Console.WriteLine($"server on {baseUrl}; uploaded ({pageCount} pages); link {linkPath}");

    // ---- the browser ----------------------------------------------------------------------------------------------
    using var playwright = await Playwright.CreateAsync();
    await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
    {
        ExecutablePath = Environment.GetEnvironmentVariable("ET_CHROMIUM") ?? "/usr/bin/chromium",
        Headless = true,
        Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    var throttle = new Throttle(downKbps * 1000 / 8, upKbps * 1000 / 8, latencyMs);
    Console.WriteLine($"throttle (CDP Network.emulateNetworkConditions): {downKbps / 1000.0:0.0##} Mbit/s down, {upKbps} kbit/s up, " +
                      $"{latencyMs} ms latency; cache disabled; a fresh browser context per measurement");

    // Warm-up, unthrottled and not counted: the server's JIT and first queries, the browser's first start.
    await ViewerAsync(browser, baseUrl + linkPath, null, verbose: false);
    await DownloadAsync(browser, baseUrl, linkPath + "/file", null);

    var results = new List<Round>();
    for (var r = 1; r <= rounds; r++)
    {
        // Alternate the order, so that a drift of the machine's load does not always favour the same side.
        ViewerResult v;
        double d;
        if (r % 2 == 1)
        {
            v = await ViewerAsync(browser, baseUrl + linkPath, throttle, verbose);
            d = await DownloadAsync(browser, baseUrl, linkPath + "/file", throttle);
        }
        else
        {
            d = await DownloadAsync(browser, baseUrl, linkPath + "/file", throttle);
            v = await ViewerAsync(browser, baseUrl + linkPath, throttle, verbose);
        }
        var round = new Round(v, d);
        results.Add(round);
        Console.WriteLine($"round {r}: page 1 drawn {v.FirstPageMs,7:N0} ms (first PDF request at {v.FirstPdfRequestMs:N0} ms), " +
                          $"full download {d,7:N0} ms, ratio {round.Ratio:0.000}; before page 1: {v.BytesBefore:N0} bytes " +
                          $"(viewer app {v.AppBytesBefore:N0}, PDF {v.PdfBytesBefore:N0} in {v.PdfRequestsBefore} range requests)");
    }

    // ---- report ---------------------------------------------------------------------------------------------------
    var ratio = Median(results.Select(x => x.Ratio));
    var met = ratio < Target;
    var firstPage = Median(results.Select(x => x.Viewer.FirstPageMs));
    var download = Median(results.Select(x => x.DownloadMs));
    var appAssets = AppAssetSizes(Path.GetDirectoryName(serverDll)!);
    Console.WriteLine();
    Console.WriteLine($"| measure (median of {rounds} rounds) | value | target |");
    Console.WriteLine("|---|---:|---|");
    Console.WriteLine($"| PDF | {pages} pages, {pdfBytes / 1e6:0.00} MB, {(linearized ? "linearized" : "not linearized")} | |");
    Console.WriteLine($"| full download of the PDF | {download / 1000:0.00} s | |");
    Console.WriteLine($"| page 1 drawn, from navigation start | {firstPage / 1000:0.00} s | |");
    Console.WriteLine($"| of which before the first PDF request (page, viewer script, worker) | {Median(results.Select(x => x.Viewer.FirstPdfRequestMs)) / 1000:0.00} s | |");
    Console.WriteLine($"| page 1 / full download | **{ratio:0.00}** | < {Target:0.00} — **{(met ? "met" : "not met")}** |");
    Console.WriteLine($"| bytes received before page 1 drew | {Median(results.Select(x => (double)x.Viewer.BytesBefore)):N0} | |");
    Console.WriteLine($"| of which the viewer app (HTML, CSS, JS, worker) | {Median(results.Select(x => (double)x.Viewer.AppBytesBefore)):N0} | |");
    Console.WriteLine($"| of which the PDF | {Median(results.Select(x => (double)x.Viewer.PdfBytesBefore)):N0} in {Median(results.Select(x => (double)x.Viewer.PdfRequestsBefore)):0} range requests | |");
    Console.WriteLine();
    Console.WriteLine($"viewer scripts as served (uncompressed): {appAssets.Raw:N0} bytes; gzip -9 {appAssets.Gzip:N0}; brotli {appAssets.Brotli:N0} " +
                      $"(at {downKbps} kbit/s: {appAssets.Raw * 8.0 / downKbps:N0} ms, {appAssets.Gzip * 8.0 / downKbps:N0} ms, {appAssets.Brotli * 8.0 / downKbps:N0} ms)");
    return met ? 0 : 3;
}

async Task<string> CreateUserAsync(string cliDll, Dictionary<string, string> settings)
{
    var psi = new ProcessStartInfo("dotnet", [cliDll, "users", "add", "--email", "bench@sender.test", "--team", "Bench", "--plan", "team"])
    { WorkingDirectory = work, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var (k, v) in settings) psi.Environment[k] = v;
    using var p = Process.Start(psi) ?? throw new InvalidOperationException("et did not start");
    var stdout = p.StandardOutput.ReadToEndAsync();
    var stderr = p.StandardError.ReadToEndAsync();
    await p.WaitForExitAsync();
    var m = Regex.Match(await stdout, "et_[A-Za-z0-9_-]+");
    if (p.ExitCode != 0 || !m.Success) throw new InvalidOperationException($"et users add failed ({p.ExitCode}): {await stderr}");
    return m.Value;
}

static async Task<ICDPSession> ThrottleAsync(IBrowserContext context, IPage page, Throttle? t)
{
    var cdp = await context.NewCDPSessionAsync(page);
    await cdp.SendAsync("Network.enable");
    await cdp.SendAsync("Network.setCacheDisabled", new() { ["cacheDisabled"] = true });
    if (t is not null)
    {
        await cdp.SendAsync("Network.emulateNetworkConditions", new()
        {
            ["offline"] = false,
            ["latency"] = t.LatencyMs,
            ["downloadThroughput"] = t.DownBytesPerSecond,
            ["uploadThroughput"] = t.UpBytesPerSecond,
        });
    }
    return cdp;
}

// The time from navigation start until the viewer has drawn page 1 (body[data-page="1"]), and what arrived before.
static async Task<ViewerResult> ViewerAsync(IBrowser browser, string url, Throttle? t, bool verbose)
{
    await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
    var page = await context.NewPageAsync();
    // Runs before the viewer's own script (and is not subject to its CSP): note the moment data-page becomes "1".
    await page.AddInitScriptAsync("""
        (() => {
          const mark = () => {
            if (window.__benchFirstPage === undefined && document.body && document.body.dataset.page === '1')
              window.__benchFirstPage = performance.now();
          };
          new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-page'] });
        })();
        """);
    var cdp = await ThrottleAsync(context, page, t);
    var requests = new Dictionary<string, Req>();
    var received = new List<(string Id, double Ts, long Bytes)>();
    var sync = new object();
    cdp.Event("Network.requestWillBeSent").OnEvent += (_, e) =>
    {
        if (e is not { } j) return;
        var req = j.GetProperty("request");
        var range = req.GetProperty("headers").EnumerateObject().FirstOrDefault(h => h.Name.Equals("Range", StringComparison.OrdinalIgnoreCase)).Value;
        lock (sync)
            requests[j.GetProperty("requestId").GetString()!] = new Req(req.GetProperty("url").GetString()!, j.GetProperty("timestamp").GetDouble(),
                range.ValueKind == JsonValueKind.String ? range.GetString() : null);
    };
    cdp.Event("Network.dataReceived").OnEvent += (_, e) =>
    {
        if (e is not { } j) return;
        lock (sync) received.Add((j.GetProperty("requestId").GetString()!, j.GetProperty("timestamp").GetDouble(), j.GetProperty("encodedDataLength").GetInt64()));
    };
    var finished = new Dictionary<string, (double Ts, long Bytes)>();
    cdp.Event("Network.loadingFinished").OnEvent += (_, e) =>
    {
        if (e is not { } j) return;
        lock (sync) finished[j.GetProperty("requestId").GetString()!] = (j.GetProperty("timestamp").GetDouble(), j.GetProperty("encodedDataLength").GetInt64());
    };

    await page.GotoAsync(url, new PageGotoOptions { WaitUntil = WaitUntilState.Commit, Timeout = 300_000 });
    await page.WaitForSelectorAsync("body[data-page='1'], body[data-state='error']", new PageWaitForSelectorOptions { Timeout = 300_000, State = WaitForSelectorState.Attached });
    if (await page.EvaluateAsync<string?>("() => document.body.dataset.state") == "error")
        throw new InvalidOperationException("the viewer shows an error: " + await page.InnerTextAsync("#error"));
    var firstPageMs = await page.EvaluateAsync<double>("() => window.__benchFirstPage");
    // The worker's script is fetched by the worker, whose body bytes the page's CDP session does not see: take the
    // sizes of finished requests that CDP reports nothing for from the page's Resource Timing instead.
    var timings = (await page.EvaluateAsync<JsonElement>(
            "() => performance.getEntriesByType('resource').map(e => ({ url: e.name, size: e.transferSize, end: e.responseEnd }))"))
        .EnumerateArray().Select(e => (Url: e.GetProperty("url").GetString()!, Size: e.GetProperty("size").GetDouble(), End: e.GetProperty("end").GetDouble()))
        .ToList();
    await cdp.DetachAsync();

    lock (sync)
    {
        var nav = requests.Values.Where(r => r.Url == url).Select(r => r.Ts).DefaultIfEmpty(requests.Values.Min(r => r.Ts)).Min();
        var cutoff = nav + firstPageMs / 1000;
        bool IsPdf(string id) => requests.TryGetValue(id, out var r) && r.Url.EndsWith("/file", StringComparison.Ordinal);
        // Bytes as they came off the (throttled) wire; for a request whose chunks report no size, its total at the end.
        var perRequest = received.Where(x => x.Ts <= cutoff).GroupBy(x => x.Id).ToDictionary(g => g.Key, g => g.Sum(x => x.Bytes));
        foreach (var (id, f) in finished)
            if (f.Ts <= cutoff && (!perRequest.TryGetValue(id, out var b) || b < f.Bytes)) perRequest[id] = f.Bytes;
        foreach (var (id, r) in requests)
        {
            if (perRequest.GetValueOrDefault(id) > 0 || IsPdf(id)) continue;
            var timing = timings.FirstOrDefault(x => x.Url == r.Url && x.End > 0 && x.End <= firstPageMs);
            if (timing.Size > 0) perRequest[id] = (long)timing.Size;
        }
        var pdfRequests = requests.Where(r => r.Value.Url.EndsWith("/file", StringComparison.Ordinal)).OrderBy(r => r.Value.Ts).ToList();
        var firstPdf = pdfRequests.Count > 0 ? (pdfRequests[0].Value.Ts - nav) * 1000 : double.NaN;
        if (verbose)
        {
            foreach (var (id, r) in requests.OrderBy(x => x.Value.Ts))
            {
                var end = finished.TryGetValue(id, out var f) ? $"{(f.Ts - nav) * 1000,7:N0} ms" : "  (open)  ";
                Console.WriteLine($"    {(r.Ts - nav) * 1000,7:N0} ms → {end} {perRequest.GetValueOrDefault(id),9:N0} B  {new Uri(r.Url).AbsolutePath}{(r.Range is null ? "" : " " + r.Range)}");
            }
            Console.WriteLine($"    page 1 drawn at {firstPageMs:N0} ms");
        }
        return new ViewerResult(firstPageMs, firstPdf, perRequest.Values.Sum(),
            perRequest.Where(x => !IsPdf(x.Key)).Sum(x => x.Value), perRequest.Where(x => IsPdf(x.Key)).Sum(x => x.Value),
            pdfRequests.Count(r => r.Value.Ts <= cutoff && r.Value.Range is not null));
    }
}

// The time to fetch the whole PDF from a page of the same origin, reading the body to its end.
static async Task<double> DownloadAsync(IBrowser browser, string baseUrl, string path, Throttle? t)
{
    await using var context = await browser.NewContextAsync();
    var page = await context.NewPageAsync();
    await page.GotoAsync(baseUrl + "/healthz"); // a same-origin page to fetch from, loaded before the throttle
    var cdp = await ThrottleAsync(context, page, t);
    var result = await page.EvaluateAsync<JsonElement>("""
        async (path) => {
          const t0 = performance.now();
          const response = await fetch(path, { cache: 'no-store' });
          const body = await response.arrayBuffer();
          return { ms: performance.now() - t0, status: response.status, bytes: body.byteLength };
        }
        """, path);
    await cdp.DetachAsync();
    if (result.GetProperty("status").GetInt32() != 200) throw new InvalidOperationException($"GET {path} answered {result.GetProperty("status")}");
    return result.GetProperty("ms").GetDouble();
}

static (long Raw, long Gzip, long Brotli) AppAssetSizes(string serverBin)
{
    var dir = Path.Combine(serverBin, "wwwroot", "viewer");
    if (!Directory.Exists(dir)) return (0, 0, 0);
    long raw = 0, gz = 0, br = 0;
    // The page and its script, style and worker (not the .gz copies the build leaves beside them, which are not served).
    foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.TopDirectoryOnly)
                 .Concat(Directory.Exists(Path.Combine(dir, "assets")) ? Directory.EnumerateFiles(Path.Combine(dir, "assets")) : [])
                 .Where(f => !f.EndsWith(".gz", StringComparison.Ordinal) && !f.EndsWith(".br", StringComparison.Ordinal)))
    {
        var bytes = File.ReadAllBytes(f);
        raw += bytes.Length;
        using (var ms = new MemoryStream())
        {
            using (var z = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(bytes);
            gz += ms.Length;
        }
        using (var ms = new MemoryStream())
        {
            using (var z = new BrotliStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(bytes);
            br += ms.Length;
        }
    }
    return (raw, gz, br);
}

string Built(string project, string dll)
{
#if DEBUG
    const string configuration = "Debug";
#else
    const string configuration = "Release";
#endif
    var path = Path.Combine(repo, "src", project, "bin", configuration, "net10.0", dll);
    if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: run with dotnet run -c {configuration} --project bench/viewer, which builds it");
    return path;
}

static int FreePort()
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    var port = ((IPEndPoint)l.LocalEndpoint).Port;
    l.Stop();
    return port;
}

static string FindRepo()
{
    foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "EmailTracking.sln"))) return d.FullName;
    throw new DirectoryNotFoundException("run from the repository (EmailTracking.sln not found upwards)");
}

static double Median(IEnumerable<double> values)
{
    var v = values.Order().ToArray();
    return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
}

int ArgInt(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) ? v : fallback;
}

string? ArgString(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

sealed record Throttle(int DownBytesPerSecond, int UpBytesPerSecond, int LatencyMs);
sealed record Req(string Url, double Ts, string? Range);
sealed record ViewerResult(double FirstPageMs, double FirstPdfRequestMs, long BytesBefore, long AppBytesBefore, long PdfBytesBefore, int PdfRequestsBefore);
sealed record Round(ViewerResult Viewer, double DownloadMs)
{
    public double Ratio => Viewer.FirstPageMs / DownloadMs;
}
